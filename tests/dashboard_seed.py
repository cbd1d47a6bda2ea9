"""A server with a month of use for the dashboard's tests and screenshots: finished images over several
days by two members with roles, a failure with the runner's own texts, and refusals; all at today's
dates (the charts show the last days), through the store's real admission and job steps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bot.core.models import ImageRequest, JobStatus, Origin
from bot.core.policy.quotas import Member
from bot.core.runner.outcome_texts import MSG_NO_IMAGE, refused_text
from bot.core.texts import stored
from testing.fake_discord import MANAGE_GUILD
from tests.web_harness import WebWorld

DAY = 86_400.0
# (member, days ago, seconds to image) of each finished image; "pat" is the fake's plain member.
FINISHED = [("pat", 0, 12), ("pat", 0, 22), ("pat", 1, 32), ("mia", 2, 42), ("pat", 3, 52), ("mia", 0, 62)]
REFUSED = ["cooldown", "cooldown"]


@dataclass
class SeededUsage:
    guild_id: int
    made: dict[str, int] = field(default_factory=lambda: {"pat": 0, "mia": 0})
    failed: int = 0


async def seed_usage(
    world: WebWorld, name: str = "Stats Guild", finished: list[tuple[str, int, int]] | None = None
) -> SeededUsage:
    """A server of its own (the fake's moderator is its server admin) with the use above (`finished`
    in place of FINISHED: the screenshots show a busier month)."""
    fake, store = world.fake, world.store
    guild = fake.add_guild(name, owner_id=fake.owner_id)
    fake.add_member(guild, fake.moderator_id, roles=[fake.add_role(guild, "Mods", MANAGE_GUILD)])
    fake.add_member(guild, fake.user_id, roles=[fake.add_role(guild, "Artists", 0)])
    seeded = SeededUsage(guild)
    now = time.time()

    async def admitted(user: int, prompt: str, at: float) -> int:
        origin = Origin(guild_id=guild, channel_id=1, user_id=user)
        _, jobs = await store.usage.admit(Member(guild, user), ImageRequest(prompt, "1:1"), origin, at, 100)
        assert len(jobs) == 1, _
        job = jobs[0]
        await store.jobs.mark_running(job.id, f"task-{job.id}", at + 1, at + 2)
        return job.id

    for n, (who, ago, seconds) in enumerate(FINISHED if finished is None else finished):
        user = fake.user_id if who == "pat" else fake.moderator_id
        at = now - ago * DAY - 10 - n  # seconds before now: today stays today
        job = await admitted(user, f"stats image {n}", at)
        await store.jobs.mark_completed(job, ["http://127.0.0.1:9/x.png"], at + seconds, None)
        seeded.made[who] += 1
    for n, text in enumerate([refused_text("the prompt was flagged"), MSG_NO_IMAGE]):
        job = await admitted(fake.user_id, f"failing {n}", now - 5)
        await store.jobs.mark_ended(job, JobStatus.FAILED, stored(text), now - 4)
        seeded.failed += 1
    for reason in REFUSED:
        await store.usage.log_refusal(
            guild_id=guild, channel_id=1, user_id=fake.user_id, prompt="x", aspect_ratio=None,
            ref_count=0, reason=reason, detail=None, now=now - 1,
        )  # fmt: skip
    return seeded
