"""Personal use in the store, on both backends: its own quota across every place, exact under
concurrent admissions, the operator's bans, follow-up counting, and usage rows with no server."""

from __future__ import annotations

import asyncio

from bot.adapters.store import Store
from bot.core.models import DM, PRIVATE_CHANNEL, USER_INSTALL_GUILD, ImageRequest, JobStatus, Origin
from bot.core.policy.quotas import BANNED, CONCURRENCY, DISABLED, QUOTA, Member

NOW = 1_800_000_000.0
USER = 1_234_567_890_123_456_789  # Discord ids need 64 bits
GUILD = 100


def origin(context: str, user: int = USER) -> Origin:
    place = 555 if context == USER_INSTALL_GUILD else None
    return Origin(source="discord", user_id=user, channel_id=9, context=context, place_guild_id=place)


async def test_concurrent_personal_admissions_start_exactly_the_quota(any_store: Store) -> None:
    contexts = [DM, PRIVATE_CHANNEL, USER_INSTALL_GUILD]
    results = await asyncio.gather(
        *(
            any_store.personal.admit(USER, ImageRequest(f"cat {n}"), origin(contexts[n % 3]), NOW, 4, 100)
            for n in range(24)
        )
    )
    admitted = [job for decision, jobs in results if decision.allowed for job in jobs]
    assert len(admitted) == 4
    assert {decision.reason for decision, _ in results} == {None, QUOTA}
    assert all(job is not None and job.guild_id is None for job in admitted)
    summary = await any_store.personal.summary(USER, NOW + 1, 4, 100)
    assert (summary.used_today, summary.limit, summary.running) == (4, 4, 4)
    # A server's quota is apart: the same person still has their server's images.
    decision, jobs = await any_store.usage.admit(
        Member(GUILD, USER),
        ImageRequest("in the server"),
        Origin(source="discord", guild_id=GUILD, user_id=USER, context="guild"),
        NOW,
        10,
    )
    job = jobs[0] if jobs else None
    assert decision.allowed and job is not None and job.guild_id == GUILD
    report = await any_store.personal.stats(NOW - 1)
    assert report.stats.generations == 4 and report.stats.refusals == {QUOTA: 20} and report.people == 1
    assert sum(report.by_context.values()) == 4
    assert (await any_store.usage.stats(None, NOW - 1)).generations == 1  # servers only


async def test_personal_quota_resets_at_utc_midnight_and_failed_jobs_are_given_back(any_store: Store) -> None:
    decision, jobs = await any_store.personal.admit(USER, ImageRequest("a"), origin(DM), NOW, 1, 2)
    job = jobs[0] if jobs else None
    assert decision.allowed and job is not None
    refused, _ = await any_store.personal.admit(USER, ImageRequest("b"), origin(DM), NOW + 1, 1, 2)
    assert refused.reason == QUOTA and "reset" in str(refused.message)
    await any_store.jobs.mark_ended(job.id, JobStatus.FAILED, "no", NOW + 2)
    again, _ = await any_store.personal.admit(USER, ImageRequest("c"), origin(DM), NOW + 3, 1, 2)
    assert again.allowed  # a failure does not count
    tomorrow, _ = await any_store.personal.admit(USER, ImageRequest("d"), origin(DM), NOW + 86_400, 1, 2)
    assert tomorrow.allowed


async def test_concurrency_and_personal_use_turned_off(any_store: Store) -> None:
    for n in range(2):
        decision, _ = await any_store.personal.admit(USER, ImageRequest(f"{n}"), origin(DM), NOW, 10, 2)
        assert decision.allowed
    busy, _ = await any_store.personal.admit(USER, ImageRequest("3"), origin(DM), NOW, 10, 2)
    assert busy.reason == CONCURRENCY and "/queue" in str(busy.message)
    off, jobs = await any_store.personal.admit(USER + 1, ImageRequest("x"), origin(DM, USER + 1), NOW, 0, 2)
    job = jobs[0] if jobs else None
    assert off.reason == DISABLED and job is None


async def test_bans_from_personal_use(any_store: Store) -> None:
    await any_store.personal.ban(USER, reason="spam", expires_at=NOW + 3600, now=NOW)
    await any_store.personal.ban(USER + 1, reason=None, expires_at=None, now=NOW + 1)
    await any_store.personal.ban(USER + 2, reason="old", expires_at=NOW - 1, now=NOW - 10)
    assert [b.user_id for b in await any_store.personal.bans(NOW)] == [USER + 1, USER]
    decision, jobs = await any_store.personal.admit(
        USER, ImageRequest("x"), origin(PRIVATE_CHANNEL), NOW, 5, 2
    )
    job = jobs[0] if jobs else None
    assert decision.reason == BANNED and job is None and "spam" in str(decision.message)
    assert (await any_store.personal.summary(USER, NOW, 5, 2)).banned
    later, _ = await any_store.personal.admit(USER, ImageRequest("x"), origin(DM), NOW + 3601, 5, 2)
    assert later.allowed  # the ban ran out
    assert await any_store.personal.unban(USER + 1)
    assert not await any_store.personal.unban(USER + 1)
    assert [b.user_id for b in await any_store.personal.bans(NOW)] == [USER]


async def test_follow_ups_are_counted_up_to_discords_limit(any_store: Store) -> None:
    _, jobs = await any_store.personal.admit(USER, ImageRequest("x"), origin(DM), NOW, 5, 2)
    job = jobs[0] if jobs else None
    assert job is not None
    await any_store.jobs.set_followups(job.id, 3)
    assert [await any_store.jobs.use_followup(job.id) for _ in range(4)] == [True, True, False, False]
    stored = await any_store.jobs.get(job.id)
    assert stored is not None and stored.followups_used == 5 and stored.context == DM
    assert [j.id for j in await any_store.jobs.unfinished(None, USER)] == [job.id]
    assert await any_store.jobs.unfinished(GUILD, USER) == []
