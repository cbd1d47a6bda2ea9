"""The quota policy with its store, on both backends (real SQLite and a real PostgreSQL), an explicit
clock, no sleeping. Part of the store contract: every test taking `store` runs on each backend."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.store import SCHEMA_HEAD, Store
from bot.core.models import ImageRequest, JobStatus, Origin
from bot.core.policy.quotas import (
    BANNED,
    CONCURRENCY,
    COOLDOWN,
    DISABLED,
    GUILD_CAP,
    QUOTA,
    Member,
    day_bounds,
)
from bot.core.usage_records import EXPORT_COLUMNS

GUILD = 100
ALICE = Member(GUILD, 1, role_ids=(10,))
MOD = 999
DEFAULT = 3


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


NOON = at("2026-11-24T12:00:00")


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def usage_rows(rows: list[tuple[object, ...]], *columns: str) -> list[tuple[object, ...]]:
    """Columns of `export_usage` rows, by name."""
    at = [EXPORT_COLUMNS.index(column) for column in columns]
    return [tuple(row[i] for i in at) for row in rows]


async def ask(
    store: Store, member: Member, now: float, prompt: str = "a cat"
) -> tuple[str | None, int | None]:
    """Admit one request; returns (refusal reason or None, job id or None)."""
    origin = Origin(source="discord", guild_id=member.guild_id, channel_id=5, user_id=member.user_id)
    decision, jobs = await store.usage.admit(member, ImageRequest(prompt), origin, now, DEFAULT)
    job = jobs[0] if jobs else None
    assert (job is None) == (not decision.allowed)
    return decision.reason, job.id if job else None


async def finish(store: Store, job_id: int, now: float) -> None:
    await store.jobs.mark_running(job_id, f"task-{job_id}", now, now + 1)
    await store.jobs.mark_completed(job_id, ["https://x/1.png"], now + 1, None)
    await store.jobs.mark_delivered(job_id, delivery="test", result_message_id=None, now=now + 2)


async def use_up(store: Store, member: Member, count: int, now: float) -> None:
    for _ in range(count):
        reason, job_id = await ask(store, member, now)
        assert reason is None and job_id is not None
        await finish(store, job_id, now)


async def test_quota_runs_out_and_resets_at_midnight_utc(store: Store) -> None:
    evening = at("2026-11-24T23:59:00")
    await use_up(store, ALICE, DEFAULT, evening)
    decision, jobs = await store.usage.admit(ALICE, ImageRequest("one more"), Origin(), evening, DEFAULT)
    job = jobs[0] if jobs else None
    assert decision.reason == QUOTA and job is None
    reset = at("2026-11-25T00:00:00")
    assert f"<t:{int(reset)}:R>" in str(decision.message)  # the reader sees it in their own time zone
    assert (await ask(store, ALICE, reset - 1))[0] == QUOTA
    assert (await ask(store, ALICE, reset))[0] is None


async def test_guild_time_zone_moves_the_day_boundary(store: Store) -> None:
    await store.settings.update_policy(GUILD, MOD, NOON, timezone="America/New_York")
    # 03:00 UTC on the 25th is still the 24th in New York; the day ends at 05:00 UTC.
    late = at("2026-11-25T03:00:00")
    await use_up(store, ALICE, DEFAULT, at("2026-11-24T20:00:00"))
    assert (await ask(store, ALICE, late))[0] == QUOTA
    assert (await ask(store, ALICE, at("2026-11-25T05:00:00")))[0] is None
    start, reset = day_bounds(late, "America/New_York")
    assert reset - start == 24 * 3600


def test_day_bounds_follow_daylight_saving() -> None:
    # Europe/Berlin leaves summer time on 2026-10-25: that day has 25 hours.
    start, end = day_bounds(at("2026-10-25T12:00:00"), "Europe/Berlin")
    assert end - start == 25 * 3600


async def test_role_limits_take_the_most_generous_and_personal_overrides_win(store: Store) -> None:
    member = Member(GUILD, 2, role_ids=(10, 11, 12))
    await store.settings.set_role_quota(GUILD, 10, 1, MOD, NOON)
    await store.settings.set_role_quota(GUILD, 11, 5, MOD, NOON)
    await store.settings.set_role_quota(GUILD, 99, 50, MOD, NOON)  # a role the member does not have
    summary = await store.usage.summary(member, NOON, DEFAULT)
    assert summary.limit == 5
    await store.settings.set_user_quota(GUILD, 2, limit=1, unlimited=False, actor_id=MOD, now=NOON)
    assert (await store.usage.summary(member, NOON, DEFAULT)).limit == 1
    await store.settings.set_user_quota(GUILD, 2, limit=None, unlimited=True, actor_id=MOD, now=NOON)
    assert (await store.usage.summary(member, NOON, DEFAULT)).limit is None
    await store.settings.set_user_quota(GUILD, 2, limit=None, unlimited=False, actor_id=MOD, now=NOON)
    assert (await store.usage.summary(member, NOON, DEFAULT)).limit == 5


async def test_guild_default_and_zero_switches_the_feature_off(store: Store) -> None:
    await store.settings.update_policy(GUILD, MOD, NOON, default_quota=1)
    loner = Member(GUILD, 3)
    assert (await store.usage.summary(loner, NOON, DEFAULT)).limit == 1
    await store.settings.set_role_quota(GUILD, 10, 0, MOD, NOON)
    assert (await ask(store, ALICE, NOON))[0] == DISABLED
    assert (await ask(store, loner, NOON))[0] is None


async def test_credits_extend_the_day_once_and_come_back_on_failure(store: Store) -> None:
    await use_up(store, ALICE, DEFAULT, NOON)
    assert await store.settings.grant_credits(GUILD, ALICE.user_id, 2, MOD, NOON) == 2
    reason, first = await ask(store, ALICE, NOON)
    assert reason is None and first is not None
    assert (await store.usage.summary(ALICE, NOON, DEFAULT)).credits == 1
    await store.jobs.mark_ended(first, JobStatus.FAILED, "boom", NOON + 5)
    assert (await store.usage.summary(ALICE, NOON, DEFAULT)).credits == 2  # refunded
    await use_up(store, ALICE, 2, NOON)
    assert (await ask(store, ALICE, NOON))[0] == QUOTA


async def test_cooldown_between_requests(store: Store) -> None:
    await store.settings.update_policy(GUILD, MOD, NOON, cooldown_seconds=60)
    reason, job_id = await ask(store, ALICE, NOON)
    assert reason is None and job_id is not None
    await finish(store, job_id, NOON)
    assert (await ask(store, ALICE, NOON + 30))[0] == COOLDOWN
    assert (await ask(store, ALICE, NOON + 60))[0] is None


async def test_running_jobs_are_capped(store: Store) -> None:
    await store.settings.update_policy(GUILD, MOD, NOON, default_quota=10)
    first = await ask(store, ALICE, NOON)
    second = await ask(store, ALICE, NOON)
    assert first[0] is None and second[0] is None
    assert (await ask(store, ALICE, NOON))[0] == CONCURRENCY
    assert second[1] is not None
    await finish(store, second[1], NOON)
    assert (await ask(store, ALICE, NOON))[0] is None


async def test_guild_wide_daily_cap(store: Store) -> None:
    await store.settings.update_policy(GUILD, MOD, NOON, daily_cap=2)
    for user in (11, 12):
        reason, job_id = await ask(store, Member(GUILD, user), NOON)
        assert reason is None and job_id is not None
        await finish(store, job_id, NOON)
    assert (await ask(store, Member(GUILD, 13), NOON))[0] == GUILD_CAP
    assert (await ask(store, Member(GUILD + 1, 13), NOON))[0] is None  # other guilds are not affected


async def test_managers_are_limited_unless_the_guild_exempts_them(store: Store) -> None:
    boss = Member(GUILD, 50, can_manage_guild=True)
    await use_up(store, boss, DEFAULT, NOON)
    assert (await ask(store, boss, NOON))[0] == QUOTA
    await store.settings.update_policy(GUILD, MOD, NOON, exempt_managers=True)
    assert (await ask(store, boss, NOON))[0] is None
    owner = Member(GUILD, 51, is_owner=True)
    assert (await store.usage.summary(owner, NOON, DEFAULT)).limit is None


async def test_ban_with_expiry(store: Store) -> None:
    await store.settings.ban(
        GUILD, ALICE.user_id, reason="spam", expires_at=NOON + 3600, actor_id=MOD, now=NOON
    )
    decision, _ = await store.usage.admit(ALICE, ImageRequest("x"), Origin(), NOON + 10, DEFAULT)
    assert decision.reason == BANNED and "spam" in str(decision.message)
    assert (await ask(store, ALICE, NOON + 3600))[0] is None  # expired


async def test_fifty_simultaneous_requests_with_five_left_start_exactly_five(store: Store) -> None:
    await store.settings.update_policy(GUILD, MOD, NOON, default_quota=5, max_running=100)
    results = await asyncio.gather(*(ask(store, ALICE, NOON) for _ in range(50)))
    started = [job_id for reason, job_id in results if reason is None]
    assert len(started) == 5
    assert {reason for reason, _ in results} == {None, QUOTA}


async def test_refund_on_failed_timed_out_and_unknown_jobs(store: Store) -> None:
    await store.settings.update_policy(GUILD, MOD, NOON, max_running=10)
    for status in (JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.UNKNOWN):
        reason, job_id = await ask(store, ALICE, NOON)
        assert reason is None and job_id is not None
        await store.jobs.mark_running(job_id, "t", NOON, NOON)
        await store.jobs.mark_ended(job_id, status, "no", NOON + 1)
    summary = await store.usage.summary(ALICE, NOON, DEFAULT)
    assert summary.used_today == 0 and summary.running == 0
    await use_up(store, ALICE, DEFAULT, NOON)  # the whole quota is still there


async def test_refused_requests_are_logged_but_never_count(store: Store) -> None:
    await store.settings.ban(GUILD, ALICE.user_id, reason=None, expires_at=None, actor_id=MOD, now=NOON)
    assert (await ask(store, ALICE, NOON))[0] == BANNED
    await store.usage.log_refusal(
        guild_id=GUILD,
        channel_id=5,
        user_id=ALICE.user_id,
        prompt="   ",
        aspect_ratio=None,
        ref_count=0,
        reason="bad_input",
        detail="empty",
        now=NOON,
    )
    rows = usage_rows(await store.usage.export(GUILD, 0, NOON + 1, 10), "outcome", "reason", "counted")
    assert rows == [("refused", "banned", 0), ("refused", "bad_input", 0)]


async def test_usage_rows_follow_the_job(store: Store) -> None:
    reason, job_id = await ask(store, ALICE, NOON, prompt="a lighthouse")
    assert reason is None and job_id is not None
    await finish(store, job_id, NOON + 10)
    rows = await store.usage.export(GUILD, 0, NOON + 1, 10)
    columns = ("outcome", "counted", "task_id", "duration", "job_id", "prompt", "channel_id")
    assert usage_rows(rows, *columns) == [("completed", 1, f"task-{job_id}", 11.0, job_id, "a lighthouse", 5)]


async def test_previous_schema_upgrades_with_its_rows(db_path: Path) -> None:
    """A database written by the pipeline release (schema 2) gains the usage tables in place."""
    from tests.legacy_fixtures import sqlite_legacy

    sqlite_legacy(db_path, 2, rows=False)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute(
        "INSERT INTO jobs (source, status, prompt, created_at, reference_urls, result_urls, guild_id,"
        " user_id) VALUES ('discord', 'running', 'kept through the upgrade', 1.0, '[]', '[]', 100, 1)"
    )
    conn.execute("INSERT INTO meta (key, value) VALUES ('commands_digest', 'abc')")
    conn.close()

    store = await Store.open(db_path)
    try:
        assert await store.schema_version() == SCHEMA_HEAD
        old = await store.jobs.get(1)
        assert old is not None and old.prompt == "kept through the upgrade" and old.usage_id is None
        assert await store.ops.get_meta("commands_digest") == "abc"
        # The old running job can still finish; it has no usage row, and nothing breaks.
        await store.jobs.mark_ended(1, JobStatus.FAILED, "x", 2.0)
        assert (await ask(store, ALICE, NOON))[0] is None
    finally:
        await store.close()


async def test_two_processes_racing_on_one_database_still_start_exactly_five(db_path: Path) -> None:
    """Two stores (two connections, two writer threads), as two bot processes would have."""
    first, second = await Store.open(db_path), await Store.open(db_path)
    try:
        await first.settings.update_policy(GUILD, MOD, NOON, default_quota=5, max_running=100)
        results = await asyncio.gather(*(ask(s, ALICE, NOON) for _ in range(25) for s in (first, second)))
    finally:
        await first.close()
        await second.close()
    assert sum(1 for reason, _ in results if reason is None) == 5
