"""Every store write is one transaction: a process killed between two of its statements leaves all of
the write or none of it, and a write that bypasses the write path fails."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from bot.adapters.store import SCHEMA_HEAD, Store
from bot.adapters.store.migrations.chain import chain
from bot.core.models import ImageRequest, JobStatus, Origin
from bot.core.policy.quotas import Member
from tests.legacy_fixtures import sqlite_legacy
from tests.store_crash_child import CRASHED, GUILD, USER

ROOT = Path(__file__).resolve().parent.parent
State = Callable[[sqlite3.Connection], tuple[Any, ...]]


def one(conn: sqlite3.Connection, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return None if row is None else (row[0] if len(row) == 1 else tuple(row))


def admin_entries(conn: sqlite3.Connection) -> int:
    return int(one(conn, "SELECT COUNT(*) FROM admin_log"))


def credits(conn: sqlite3.Connection) -> int | None:
    return one(conn, f"SELECT credits FROM user_quotas WHERE user_id = {USER}")  # type: ignore[no-any-return]


# scenario: (what to read, the state before the write, the state after it)
CASES: dict[str, tuple[State, tuple[Any, ...], tuple[Any, ...]]] = {
    "admit": (
        lambda c: (
            one(c, "SELECT COUNT(*) FROM usage"),
            one(c, "SELECT COUNT(*) FROM jobs"),
            credits(c),
            one(c, "SELECT COUNT(*) FROM usage WHERE job_id IS NOT NULL"),
        ),
        (0, 0, 1, 0),
        (1, 1, 0, 1),
    ),
    "admit_personal": (
        lambda c: (
            one(c, "SELECT COUNT(*) FROM usage WHERE guild_id IS NULL AND context = 'dm' AND counted = 1"),
            one(c, "SELECT COUNT(*) FROM jobs WHERE guild_id IS NULL AND context = 'dm'"),
            one(c, "SELECT COUNT(*) FROM usage WHERE job_id IS NOT NULL"),
        ),
        (0, 0, 0),
        (1, 1, 1),
    ),
    "mark_running": (
        lambda c: (one(c, "SELECT status, task_id FROM jobs"), one(c, "SELECT task_id FROM usage")),
        (("submitting", None), None),
        (("running", "task-x"), "task-x"),
    ),
    "mark_completed": (
        lambda c: (one(c, "SELECT status FROM jobs"), one(c, "SELECT outcome FROM usage")),
        ("running", "submitted"),
        ("completed", "completed"),
    ),
    "mark_ended": (
        lambda c: (
            one(c, "SELECT status FROM jobs"),
            one(c, "SELECT outcome, counted, used_credit FROM usage"),
            credits(c),
        ),
        ("running", ("submitted", 1, 1), 0),
        ("failed", ("failed", 0, 0), 1),
    ),
    "mark_delivered": (
        lambda c: (one(c, "SELECT status, result_message_id, interaction_token IS NULL FROM jobs"),),
        (("completed", None, 0),),
        (("delivered", 7, 1),),
    ),
    "grant_credits": (lambda c: (credits(c), admin_entries(c)), (None, 0), (5, 1)),
    "update_policy": (
        lambda c: (one(c, "SELECT cooldown_seconds FROM guild_settings"), admin_entries(c)),
        (None, 0),
        (30, 1),
    ),
    "ban": (lambda c: (one(c, "SELECT COUNT(*) FROM bans"), admin_entries(c)), (0, 0), (1, 1)),
    "add_rule": (lambda c: (one(c, "SELECT COUNT(*) FROM prompt_rules"), admin_entries(c)), (0, 0), (1, 1)),
    "reset_today": (
        lambda c: (one(c, "SELECT counted FROM usage"), admin_entries(c)),
        (1, 0),
        (0, 1),
    ),
    "migrate": (
        lambda c: (revision(c), one(c, "SELECT outcome, counted FROM usage")),
        (None, ("submitted", 1)),
        (SCHEMA_HEAD, ("failed", 0)),
    ),
}

# Each revision commits whole: a crash in a later one leaves the earlier ones applied (0005 repairs).
INTERMEDIATE: dict[str, list[tuple[Any, ...]]] = {
    "migrate": [(rev, ("failed", 0)) for rev in chain()[chain().index("0005") : -1]]
}


def revision(conn: sqlite3.Connection) -> str | None:
    """The migration chain's revision (None: still as version 4 of the bot left it)."""
    if one(conn, "SELECT name FROM sqlite_master WHERE name = 'alembic_version'") is None:
        return None
    return one(conn, "SELECT version_num FROM alembic_version")  # type: ignore[no-any-return]


def make_v4_database(path: Path, job_status: str, **usage: Any) -> None:
    """A database as version 4 of the bot left it after a crash between a job's end and its usage row:
    the job finished, its usage row still says 'submitted'."""
    sqlite_legacy(path, 4, rows=False)
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    row = {"guild_id": GUILD, "user_id": USER, "created_at": 100.0, "outcome": "submitted", "counted": 1,
           "used_credit": 0, "job_id": 1} | usage  # fmt: skip
    db["usage"].insert(row)  # type: ignore[union-attr]
    db["jobs"].insert(  # type: ignore[union-attr]
        {
            "id": 1,
            "source": "discord",
            "status": job_status,
            "prompt": "p",
            "created_at": 100.0,
            "finished_at": 140.0,
            "guild_id": GUILD,
            "user_id": USER,
            "usage_id": 1,
            "reference_urls": "[]",
            "task_id": "t-1",
        }
    )
    conn.close()


async def run_child(path: Path, scenario: str, crash_at: int) -> int:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.store_crash_child", str(path), scenario, str(crash_at), cwd=ROOT
    )
    try:
        return await asyncio.wait_for(child.wait(), 30)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise TimeoutError(f"the child writing {scenario} (crash at {crash_at}) ran past 30 s") from None


async def assert_consistent_after_restart(path: Path) -> None:
    """What a restarted bot sees: no finished job holds a running slot, and the running count is the
    number of jobs really on their way."""
    store = await Store.open(path)
    try:
        summary = await store.usage.summary(Member(GUILD, USER), 1_800_000_100.0, 3)
        unfinished = await store.jobs.unfinished(GUILD, USER)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    stale = conn.execute(
        "SELECT u.id FROM usage u LEFT JOIN jobs j ON j.id = u.job_id WHERE u.outcome = 'submitted'"
        " AND (j.status IS NULL OR j.status NOT IN ('queued', 'submitting', 'running'))"
    ).fetchall()
    conn.close()
    assert stale == []
    assert summary.running == len([j for j in unfinished if j.status is not JobStatus.COMPLETED])


@pytest.mark.parametrize("scenario", list(CASES))
async def test_a_write_killed_between_its_statements_leaves_all_or_nothing(
    tmp_path: Path, scenario: str
) -> None:
    state, before, after = CASES[scenario]
    # One crash point per statement of a write; for the migration, one per revision from 0005 on.
    revisions = len(chain()) - chain().index("0005")
    crash_points = range(1, revisions + 2 if scenario == "migrate" else 7)
    paths = [tmp_path / f"crash-{n}.db" for n in crash_points]
    if scenario == "migrate":
        for path in paths:
            make_v4_database(path, "failed")
    codes = await asyncio.gather(
        *(run_child(p, scenario, n) for p, n in zip(paths, crash_points, strict=True))
    )
    assert codes[0] == CRASHED, "the write has no statement to crash after"
    assert 0 in codes, "the write has more statements than the crash points tried"
    for path, code in zip(paths, codes, strict=True):
        assert code in (0, CRASHED)
        conn = sqlite3.connect(path)
        try:
            expected = [after] if code == 0 else [before, *INTERMEDIATE.get(scenario, [])]
            assert state(conn) in expected, (scenario, code)
        finally:
            conn.close()
        await assert_consistent_after_restart(path)


async def test_writing_outside_the_write_path_fails(db_path: Path) -> None:
    store = await Store.open(db_path)
    try:
        # The connection itself refuses: a statement that skips the helper cannot commit by accident.
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await store._run(store._db.execute, "INSERT INTO meta (key, value) VALUES ('k', 'v')")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await store._run(lambda: store._db["meta"].insert({"key": "k", "value": "v"}))  # type: ignore[union-attr]

        # The helper itself refuses to run anywhere but on the writer thread.
        with pytest.raises(RuntimeError, match="writer thread"):
            store._write()

        # A handle kept beyond its transaction is dead.
        def keep_handle() -> Any:
            with store._write() as tx:
                tx.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
            return tx

        kept = await store._run(keep_handle)
        with pytest.raises(RuntimeError, match="ended"):
            kept.execute("INSERT INTO meta (key, value) VALUES ('b', '2')")

        # An error half-way rolls the whole transaction back.
        def fail_half_way() -> None:
            with store._write() as tx:
                tx.execute("INSERT INTO meta (key, value) VALUES ('c', '3')")
                tx.execute("INSERT INTO no_such_table VALUES (1)")

        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await store._run(fail_half_way)
        assert await store.ops.get_meta("a") == "1"
        assert await store.ops.get_meta("c") is None
        # ...and the store works on afterwards.
        await store.ops.set_meta("d", "4")
        assert await store.ops.get_meta("d") == "4"
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("status", "usage", "outcome", "counted", "credits_after"),
    [
        ("failed", {"used_credit": 1}, "failed", 0, 1),
        ("timed_out", {}, "timed_out", 0, 0),
        ("unknown", {}, "failed", 0, 0),
        ("completed", {}, "completed", 1, 0),
        ("delivered", {"used_credit": 1}, "completed", 1, 0),
        ("cancelled", {}, "cancelled", 1, 0),  # the requester cancelled a sent task: it counts
        ("running", {}, "submitted", 1, 0),  # really running: left alone
    ],
)
async def test_the_repair_migration_finishes_usage_rows_of_finished_jobs(
    db_path: Path, status: str, usage: dict[str, Any], outcome: str, counted: int, credits_after: int
) -> None:
    make_v4_database(db_path, status, **usage)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute(f"INSERT INTO user_quotas (guild_id, user_id, credits) VALUES ({GUILD}, {USER}, 0)")
    conn.close()
    store = await Store.open(db_path)
    try:
        summary = await store.usage.summary(Member(GUILD, USER), 200.0, 3)
    finally:
        await store.close()
    conn = sqlite3.connect(db_path)
    row = conn.execute("SELECT outcome, counted, used_credit, duration FROM usage").fetchone()
    assert row[:2] == (outcome, counted)
    assert credits(conn) == credits_after
    conn.close()
    assert summary.running == (1 if status == "running" else 0)
    if status != "running":
        assert row[3] == 40.0 and row[2] == (usage.get("used_credit", 0) if counted else 0)


async def test_the_repair_migration_refunds_a_cancel_by_a_moderator_or_before_sending(db_path: Path) -> None:
    make_v4_database(db_path, "cancelled")
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("UPDATE jobs SET cancelled_by = 999")
    conn.close()
    await (await Store.open(db_path)).close()
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT outcome, counted FROM usage").fetchone() == ("cancelled", 0)
    conn.close()


async def test_a_fresh_database_admits_and_finishes_through_the_write_path(db_path: Path) -> None:
    store = await Store.open(db_path)
    try:
        origin = Origin(source="discord", guild_id=GUILD, channel_id=5, user_id=USER)
        decision, jobs = await store.usage.admit(Member(GUILD, USER), ImageRequest("p"), origin, 100.0, 3)
        job = jobs[0] if jobs else None
        assert decision.allowed and job is not None
        assert await store.jobs.mark_running(job.id, "t", 101.0, 102.0)
        assert (await store.usage.summary(Member(GUILD, USER), 103.0, 3)).running == 1
        assert await store.jobs.mark_ended(job.id, JobStatus.FAILED, "x", 104.0)
        assert (await store.usage.summary(Member(GUILD, USER), 105.0, 3)).running == 0
    finally:
        await store.close()
