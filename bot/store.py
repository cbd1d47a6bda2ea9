"""The bot's SQLite database: schema, migrations and every SQL statement.

The rest of the bot speaks to it in intents (`create_job`, `claim_due_jobs`, ...), so nothing outside
this module assumes SQLite. All work runs on one dedicated thread that owns the only connection:
the event loop never blocks on the disk, and there is exactly one writer.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlite_utils

from bot.models import ImageRequest, Job, JobStatus, Origin

P = ParamSpec("P")
R = TypeVar("R")

Migration = Callable[[sqlite_utils.Database], None]


def _v1_jobs(db: sqlite_utils.Database) -> None:
    db["jobs"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "source": str,
            "status": str,
            "prompt": str,
            "aspect_ratio": str,
            "reference_urls": str,
            "has_refs": int,
            "guild_id": int,
            "channel_id": int,
            "user_id": int,
            "interaction_id": int,
            "application_id": int,
            "interaction_token": str,
            "token_expires_at": float,
            "message_id": int,
            "task_id": str,
            "trace_id": str,
            "api_status": str,
            "created_at": float,
            "submitted_at": float,
            "finished_at": float,
            "delivered_at": float,
            "poll_count": int,
            "poll_errors": int,
            "next_poll_at": float,
            "error": str,
            "result_urls": str,
            "delivery": str,
            "result_message_id": int,
        },
        pk="id",
        not_null={"source", "status", "prompt", "created_at"},
        defaults={"poll_count": 0, "poll_errors": 0, "has_refs": 0},
    )
    jobs = db["jobs"]
    jobs.create_index(["source", "status", "next_poll_at"], index_name="jobs_due")  # type: ignore[union-attr]
    jobs.create_index(["has_refs", "finished_at"], index_name="jobs_durations")  # type: ignore[union-attr]
    jobs.create_index(["guild_id", "user_id", "created_at"], index_name="jobs_user")  # type: ignore[union-attr]
    jobs.create_index(["task_id"], index_name="jobs_task")  # type: ignore[union-attr]


def _v2_meta(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")  # type: ignore[union-attr]


# Applied in order; a database at version N gets MIGRATIONS[N:]. Never edit a released entry:
# append a new one, so an existing database upgrades in place without losing rows.
MIGRATIONS: list[Migration] = [_v1_jobs, _v2_meta]

_RESUMABLE = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.COMPLETED)
_DONE_OK = (JobStatus.COMPLETED, JobStatus.DELIVERED)


class Store:
    """Async facade over one SQLite connection owned by one worker thread."""

    def __init__(self, db: sqlite_utils.Database, executor: ThreadPoolExecutor) -> None:
        self._db = db
        self._executor = executor
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, _connect, Path(path))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def schema_version(self) -> int:
        return await self._run(_user_version, self._db)

    async def get_meta(self, key: str) -> str | None:
        return await self._run(self._get_meta, key)

    def _get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(self._set_meta, key, value)

    def _set_meta(self, key: str, value: str) -> None:
        with self._db.conn:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    # -- jobs: writes ------------------------------------------------------------------------------

    async def create_job(self, request: ImageRequest, origin: Origin, now: float) -> Job:
        row = {
            "source": origin.source,
            "status": JobStatus.QUEUED.value,
            "prompt": request.prompt,
            "aspect_ratio": request.aspect_ratio,
            "reference_urls": json.dumps(list(request.reference_urls)),
            "has_refs": 1 if request.reference_urls else 0,
            "guild_id": origin.guild_id,
            "channel_id": origin.channel_id,
            "user_id": origin.user_id,
            "interaction_id": origin.interaction_id,
            "application_id": origin.application_id,
            "interaction_token": origin.interaction_token,
            "token_expires_at": origin.token_expires_at,
            "message_id": origin.message_id,
            "created_at": now,
            "poll_count": 0,
            "poll_errors": 0,
        }
        return await self._run(self._insert_job, row)

    def _insert_job(self, row: dict[str, Any]) -> Job:
        with self._db.conn:
            cursor = self._db.execute(
                f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                list(row.values()),
            )
        assert cursor.lastrowid is not None
        return self._get(cursor.lastrowid)

    async def set_message_id(self, job_id: int, message_id: int) -> None:
        await self._update(job_id, message_id=message_id)

    async def set_status(self, job_id: int, status: JobStatus) -> None:
        await self._update(job_id, status=status.value)

    async def reset_leases(self, source: str, now: float) -> None:
        """After a restart, poll every running job at once: leases of a dead process mean nothing."""
        await self._run(self._reset_leases, source, now)

    def _reset_leases(self, source: str, now: float) -> None:
        with self._db.conn:
            self._db.execute(
                "UPDATE jobs SET next_poll_at = ? WHERE source = ? AND status = ? AND next_poll_at > ?",
                [now, source, JobStatus.RUNNING.value, now],
            )

    async def mark_submitting(self, job_id: int) -> None:
        await self._update(job_id, status=JobStatus.SUBMITTING.value)

    async def mark_running(self, job_id: int, task_id: str, submitted_at: float, next_poll_at: float) -> None:
        await self._update(
            job_id,
            status=JobStatus.RUNNING.value,
            task_id=task_id,
            submitted_at=submitted_at,
            next_poll_at=next_poll_at,
            api_status="pending",
        )

    async def record_poll(
        self,
        job_id: int,
        *,
        api_status: str | None,
        trace_id: str | None,
        next_poll_at: float,
        poll_errors: int,
    ) -> None:
        await self._run(self._record_poll, job_id, api_status, trace_id, next_poll_at, poll_errors)

    def _record_poll(
        self, job_id: int, api_status: str | None, trace_id: str | None, next_poll_at: float, poll_errors: int
    ) -> None:
        with self._db.conn:
            self._db.execute(
                "UPDATE jobs SET poll_count = poll_count + 1, next_poll_at = ?, poll_errors = ?,"
                " api_status = COALESCE(?, api_status), trace_id = COALESCE(?, trace_id) WHERE id = ?",
                [next_poll_at, poll_errors, api_status, trace_id, job_id],
            )

    async def mark_completed(
        self, job_id: int, result_urls: list[str], finished_at: float, trace_id: str | None
    ) -> None:
        await self._run(self._mark_completed, job_id, result_urls, finished_at, trace_id)

    def _mark_completed(self, job_id: int, urls: list[str], finished_at: float, trace_id: str | None) -> None:
        with self._db.conn:
            self._db.execute(
                "UPDATE jobs SET status = ?, result_urls = ?, finished_at = ?, next_poll_at = NULL,"
                " poll_count = poll_count + 1, api_status = 'completed', trace_id = COALESCE(?, trace_id)"
                " WHERE id = ?",
                [JobStatus.COMPLETED.value, json.dumps(urls), finished_at, trace_id, job_id],
            )

    async def mark_ended(self, job_id: int, status: JobStatus, error: str, finished_at: float) -> None:
        """A job ended without images (failed, timed out, cancelled, outcome unknown)."""
        await self._update(
            job_id, status=status.value, error=error, finished_at=finished_at, next_poll_at=None
        )

    async def mark_delivered(
        self, job_id: int, *, delivery: str, result_message_id: int | None, now: float
    ) -> None:
        """The outcome reached the requester. The interaction token is dropped: it is no longer needed."""
        await self._run(self._mark_delivered, job_id, delivery, result_message_id, now)

    def _mark_delivered(self, job_id: int, delivery: str, message_id: int | None, now: float) -> None:
        with self._db.conn:
            self._db.execute(
                "UPDATE jobs SET status = CASE WHEN status = ? THEN ? ELSE status END,"
                " delivered_at = ?, delivery = ?, result_message_id = COALESCE(?, result_message_id),"
                " interaction_token = NULL WHERE id = ?",
                [JobStatus.COMPLETED.value, JobStatus.DELIVERED.value, now, delivery, message_id, job_id],
            )

    async def _update(self, job_id: int, **values: Any) -> None:
        await self._run(self._update_sync, job_id, values)

    def _update_sync(self, job_id: int, values: dict[str, Any]) -> None:
        with self._db.conn:
            self._db["jobs"].update(job_id, values)  # type: ignore[union-attr]

    # -- jobs: reads -------------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job | None:
        try:
            return await self._run(self._get, job_id)
        except LookupError:
            return None

    def _get(self, job_id: int) -> Job:
        rows = list(self._db.query("SELECT * FROM jobs WHERE id = ?", [job_id]))
        if not rows:
            raise LookupError(job_id)
        return Job.from_row(rows[0])

    async def claim_due_jobs(self, source: str, now: float, limit: int, lease: float) -> list[Job]:
        """Running jobs whose poll is due, leased for `lease` seconds so no other pass takes them."""
        return await self._run(self._claim, source, now, limit, lease)

    def _claim(self, source: str, now: float, limit: int, lease: float) -> list[Job]:
        with self._db.conn:
            cursor = self._db.execute(
                "UPDATE jobs SET next_poll_at = ? WHERE id IN ("
                " SELECT id FROM jobs WHERE source = ? AND status = ? AND next_poll_at <= ?"
                " ORDER BY next_poll_at LIMIT ?) RETURNING *",
                [now + lease, source, JobStatus.RUNNING.value, now, limit],
            )
            columns = [c[0] for c in cursor.description]
            rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
        return [Job.from_row(row) for row in rows]

    async def next_poll_time(self, source: str) -> float | None:
        return await self._run(self._next_poll_time, source)

    def _next_poll_time(self, source: str) -> float | None:
        row = self._db.execute(
            "SELECT MIN(next_poll_at) FROM jobs WHERE source = ? AND status = ?",
            [source, JobStatus.RUNNING.value],
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    async def jobs_to_resume(self, source: str) -> list[Job]:
        """Jobs a previous process left half-way: not sent, sent with unknown outcome, finished but
        not delivered, or ended without the requester being told."""
        return await self._run(self._to_resume, source)

    def _to_resume(self, source: str) -> list[Job]:
        placeholders = ", ".join("?" for _ in _RESUMABLE)
        rows = self._db.query(
            f"SELECT * FROM jobs WHERE source = ? AND delivered_at IS NULL AND ("
            f" status IN ({placeholders}) OR status IN (?, ?, ?, ?)) ORDER BY id",
            [
                source,
                *(s.value for s in _RESUMABLE),
                JobStatus.FAILED.value,
                JobStatus.TIMED_OUT.value,
                JobStatus.CANCELLED.value,
                JobStatus.UNKNOWN.value,
            ],
        )
        return [Job.from_row(row) for row in rows]

    async def running_count(self, source: str) -> int:
        return await self._run(self._running_count, source)

    def _running_count(self, source: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE source = ? AND status = ?", [source, JobStatus.RUNNING.value]
        ).fetchone()
        return int(row[0])

    async def recent_durations(self, has_refs: bool, limit: int = 50) -> list[float]:
        """Seconds from submit to finish of the latest successful jobs of one kind, newest first."""
        return await self._run(self._recent_durations, has_refs, limit)

    def _recent_durations(self, has_refs: bool, limit: int) -> list[float]:
        rows = self._db.execute(
            "SELECT finished_at - submitted_at FROM jobs INDEXED BY jobs_durations"
            " WHERE has_refs = ? AND finished_at IS NOT NULL AND submitted_at IS NOT NULL"
            " AND status IN (?, ?) ORDER BY finished_at DESC LIMIT ?",
            [1 if has_refs else 0, *(s.value for s in _DONE_OK), limit],
        ).fetchall()
        return [float(r[0]) for r in rows if r[0] is not None and r[0] >= 0]


def _connect(path: Path) -> sqlite_utils.Database:
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    # The connection is created here and only ever used on this same worker thread.
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 10000")
    db = sqlite_utils.Database(conn)
    migrate(db)
    return db


def _user_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database) -> None:
    """Bring the schema to the newest version, one migration per transaction."""
    current = _user_version(db)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"the database is at schema version {current}, newer than this bot knows ({len(MIGRATIONS)}); "
            "run a newer version of the bot"
        )
    for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
        with db.conn:
            db.execute("BEGIN IMMEDIATE")
            step(db)
            db.execute(f"PRAGMA user_version = {version}")
