"""A child process for the crash-consistency tests: it prepares a database, then runs one store write
and dies (`os._exit`) right after its N-th statement, before the transaction could commit.

    python -m tests.store_crash_child DB SCENARIO N

Exit 0: the write finished (it has fewer than N statements); CRASHED: the process was killed."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.adapters.store import Store
from bot.adapters.store import sqlite_backend as base
from bot.core.models import ImageRequest, JobStatus, Origin
from bot.core.policy.quotas import Member

CRASHED = 86
GUILD, USER, ADMIN = 100, 1, 999
MEMBER = Member(GUILD, USER)
NOW = 1_800_000_000.0
ORIGIN = Origin(source="discord", guild_id=GUILD, channel_id=5, user_id=USER, interaction_token="tok-secret")

Step = Callable[[Store], Awaitable[object]]


async def _admit(store: Store) -> int:
    decision, jobs = await store.usage.admit(MEMBER, ImageRequest("a cat"), ORIGIN, NOW, 3)
    job = jobs[0] if jobs else None
    assert decision.allowed and job is not None, decision
    return job.id


async def _only_credits(store: Store) -> None:
    """The member's daily limit is 0 and they hold one credit: an admission spends it."""
    await store.settings.set_user_quota(GUILD, USER, limit=0, unlimited=False, actor_id=ADMIN, now=NOW)
    await store.settings.grant_credits(GUILD, USER, 1, ADMIN, NOW)


async def _running_on_credit(store: Store) -> None:
    await _only_credits(store)
    job_id = await _admit(store)
    await store.jobs.mark_running(job_id, "task-1", NOW + 1, NOW + 2)


async def _submitting(store: Store) -> None:
    await store.jobs.mark_submitting(await _admit(store))


async def _running(store: Store) -> None:
    await store.jobs.mark_running(await _admit(store), "task-1", NOW + 1, NOW + 2)


async def _completed(store: Store) -> None:
    await _running(store)
    await store.jobs.mark_completed(1, ["https://x/1.png"], NOW + 5, "trace")


async def _admit_personal(store: Store) -> int:
    origin = Origin(source="discord", user_id=USER, channel_id=5, context="dm", interaction_token="tok")
    decision, jobs = await store.personal.admit(USER, ImageRequest("a cat"), origin, NOW, 5, 2)
    job = jobs[0] if jobs else None
    assert decision.allowed and job is not None, decision
    return job.id


async def _nothing(store: Store) -> None:
    return None


# scenario: (setup, the write under test)
SCENARIOS: dict[str, tuple[Step, Step]] = {
    "admit": (_only_credits, _admit),
    "admit_personal": (_nothing, _admit_personal),
    "mark_running": (_submitting, lambda s: s.jobs.mark_running(1, "task-x", NOW + 1, NOW + 2)),
    "mark_completed": (_running, lambda s: s.jobs.mark_completed(1, ["https://x/1.png"], NOW + 5, "trace")),
    "mark_ended": (
        _running_on_credit,
        lambda s: s.jobs.mark_ended(1, JobStatus.FAILED, "it failed", NOW + 5),
    ),
    "mark_delivered": (
        _completed,
        lambda s: s.jobs.mark_delivered(1, delivery="channel", result_message_id=7, now=NOW + 6),
    ),
    "grant_credits": (_nothing, lambda s: s.settings.grant_credits(GUILD, USER, 5, ADMIN, NOW)),
    "update_policy": (_nothing, lambda s: s.settings.update_policy(GUILD, ADMIN, NOW, cooldown_seconds=30)),
    "ban": (
        _nothing,
        lambda s: s.settings.ban(GUILD, USER, reason="spam", expires_at=None, actor_id=ADMIN, now=NOW),
    ),
    "add_rule": (_nothing, lambda s: s.settings.add_rule(GUILD, "word", "badword", ADMIN, NOW)),
    "reset_today": (_completed, lambda s: s.settings.reset_today(GUILD, USER, ADMIN, NOW + 10)),
    "migrate": (_nothing, _nothing),  # the database is prepared by the test; opening it migrates
}


def _crash_after(n: int) -> Callable[[], None]:
    count = 0

    def hook() -> None:
        nonlocal count
        count += 1
        if count == n:
            os._exit(CRASHED)

    return hook


async def main(path: Path, scenario: str, crash_at: int) -> None:
    setup, write = SCENARIOS[scenario]
    if scenario == "migrate":
        base.after_statement = _crash_after(crash_at)
    store = await Store.open(path)
    await setup(store)
    base.after_statement = _crash_after(crash_at)
    await write(store)
    base.after_statement = None
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
