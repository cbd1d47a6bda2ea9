"""Job rows: everything needed to finish a job after a restart."""

from __future__ import annotations

import json
from typing import Any

from bot.models import ImageRequest, Job, JobStatus, Origin
from bot.store.base import StoreBase, Tx

_RESUMABLE = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.COMPLETED)
_DONE_OK = (JobStatus.COMPLETED, JobStatus.DELIVERED)
_UNFINISHED = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING)
# /history counts a member's images up to this many; beyond it, the count says "more than".
HISTORY_COUNT_CAP = 10_000


class JobQueries(StoreBase):
    # -- jobs: writes ------------------------------------------------------------------------------

    async def create_job(self, request: ImageRequest, origin: Origin, now: float) -> Job:
        """A job outside any quota (terminal, benchmark): written QUEUED before anything is sent."""
        return await self._run(self._create_job, request, origin, now)

    def _create_job(self, request: ImageRequest, origin: Origin, now: float) -> Job:
        with self._write() as tx:
            job_id = tx.insert("jobs", self._job_row(request, origin, now))
        return self._get(job_id)

    @staticmethod
    def _job_row(request: ImageRequest, origin: Origin, now: float) -> dict[str, Any]:
        return {
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

    async def set_message_id(self, job_id: int, message_id: int) -> None:
        await self._update(job_id, message_id=message_id)

    async def _move(self, job_id: int, source: JobStatus, target: JobStatus) -> bool:
        """Change the status only if it still is `source`: a cancel in between wins."""
        return await self._run(self._move_sync, job_id, source, target)

    def _move_sync(self, job_id: int, source: JobStatus, target: JobStatus) -> bool:
        with self._write() as tx:
            cursor = tx.execute(
                "UPDATE jobs SET status = ? WHERE id = ? AND status = ?", [target.value, job_id, source.value]
            )
        return cursor.rowcount > 0

    async def mark_requeued(self, job_id: int) -> bool:
        """A submit that certainly did not reach the API waits to be retried. False if cancelled."""
        return await self._move(job_id, JobStatus.SUBMITTING, JobStatus.QUEUED)

    async def reset_leases(self, source: str, now: float) -> None:
        """After a restart, poll every running job at once: leases of a dead process mean nothing."""
        await self._run(self._reset_leases, source, now)

    def _reset_leases(self, source: str, now: float) -> None:
        with self._write() as tx:
            tx.execute(
                "UPDATE jobs SET next_poll_at = ? WHERE source = ? AND status = ? AND next_poll_at > ?",
                [now, source, JobStatus.RUNNING.value, now],
            )

    async def mark_submitting(self, job_id: int) -> bool:
        """The submit is about to be sent. False if the job was cancelled before that."""
        return await self._move(job_id, JobStatus.QUEUED, JobStatus.SUBMITTING)

    async def mark_running(self, job_id: int, task_id: str, submitted_at: float, next_poll_at: float) -> bool:
        """The API took the request. False if the job was cancelled meanwhile."""
        return await self._run(self._mark_running, job_id, task_id, submitted_at, next_poll_at)

    def _mark_running(self, job_id: int, task_id: str, submitted_at: float, next_poll_at: float) -> bool:
        with self._write() as tx:
            cursor = tx.execute(
                "UPDATE jobs SET status = ?, task_id = ?, submitted_at = ?, next_poll_at = ?,"
                " api_status = 'pending' WHERE id = ? AND status IN (?, ?)",
                [
                    JobStatus.RUNNING.value,
                    task_id,
                    submitted_at,
                    next_poll_at,
                    job_id,
                    JobStatus.SUBMITTING.value,
                    JobStatus.QUEUED.value,
                ],
            )
            # The task id is worth keeping even for a cancelled job: the provider may bill it.
            tx.execute("UPDATE jobs SET task_id = ? WHERE id = ? AND task_id IS NULL", [task_id, job_id])
            tx.execute(
                "UPDATE usage SET task_id = ? WHERE id = (SELECT usage_id FROM jobs WHERE id = ?)",
                [task_id, job_id],
            )
        return cursor.rowcount > 0

    async def record_poll(
        self,
        job_id: int,
        *,
        api_status: str | None,
        trace_id: str | None,
        next_poll_at: float,
        poll_errors: int,
    ) -> bool:
        """False if the job is no longer running (cancelled meanwhile)."""
        return await self._run(self._record_poll, job_id, api_status, trace_id, next_poll_at, poll_errors)

    def _record_poll(
        self, job_id: int, api_status: str | None, trace_id: str | None, next_poll_at: float, poll_errors: int
    ) -> bool:
        with self._write() as tx:
            cursor = tx.execute(
                "UPDATE jobs SET poll_count = poll_count + 1, next_poll_at = ?, poll_errors = ?,"
                " api_status = COALESCE(?, api_status), trace_id = COALESCE(?, trace_id)"
                " WHERE id = ? AND status = ?",
                [next_poll_at, poll_errors, api_status, trace_id, job_id, JobStatus.RUNNING.value],
            )
        return cursor.rowcount > 0

    async def mark_completed(
        self, job_id: int, result_urls: list[str], finished_at: float, trace_id: str | None
    ) -> bool:
        """The task finished with images. False if the job was cancelled meanwhile."""
        return await self._run(self._mark_completed, job_id, result_urls, finished_at, trace_id)

    def _mark_completed(self, job_id: int, urls: list[str], finished_at: float, trace_id: str | None) -> bool:
        with self._write() as tx:
            cursor = tx.execute(
                "UPDATE jobs SET status = ?, result_urls = ?, finished_at = ?, next_poll_at = NULL,"
                " poll_count = poll_count + 1, api_status = 'completed', trace_id = COALESCE(?, trace_id)"
                " WHERE id = ? AND status = ?",
                [
                    JobStatus.COMPLETED.value,
                    json.dumps(urls),
                    finished_at,
                    trace_id,
                    job_id,
                    JobStatus.RUNNING.value,
                ],
            )
            if cursor.rowcount == 0:
                return False
            tx.execute(
                "UPDATE usage SET outcome = 'completed', duration = ? - created_at"
                " WHERE id = (SELECT usage_id FROM jobs WHERE id = ?)",
                [finished_at, job_id],
            )
        return True

    async def mark_ended(
        self, job_id: int, status: JobStatus, error: str, finished_at: float, *, refund: bool = True
    ) -> bool:
        """A job ended without images (failed, timed out, cancelled, outcome unknown). Its use is
        refunded (and a one-off credit given back) unless `refund` is False. False if the job had
        already ended or finished: the first ending wins."""
        return await self._run(self._mark_ended, job_id, status, error, finished_at, refund)

    def _mark_ended(
        self, job_id: int, status: JobStatus, error: str, finished_at: float, refund: bool
    ) -> bool:
        with self._write() as tx:
            return self._end_in(tx, job_id, status, error, finished_at, refund)

    @staticmethod
    def _end_in(tx: Tx, job_id: int, status: JobStatus, error: str, finished_at: float, refund: bool) -> bool:
        outcome = {JobStatus.TIMED_OUT: "timed_out", JobStatus.CANCELLED: "cancelled"}.get(status, "failed")
        cursor = tx.execute(
            "UPDATE jobs SET status = ?, error = ?, finished_at = ?, next_poll_at = NULL"
            " WHERE id = ? AND status IN (?, ?, ?)",
            [status.value, error, finished_at, job_id, *(s.value for s in _UNFINISHED)],
        )
        if cursor.rowcount == 0:
            return False
        row = tx.execute(
            "SELECT u.id, u.guild_id, u.user_id, u.counted, u.used_credit FROM usage u"
            " JOIN jobs j ON j.usage_id = u.id WHERE j.id = ?",
            [job_id],
        ).fetchone()
        if row is None:
            return True
        usage_id, guild_id, user_id, counted, used_credit = row
        give_back = refund and counted
        tx.execute(
            "UPDATE usage SET outcome = ?, duration = ? - created_at, counted = ?, used_credit = ?"
            " WHERE id = ?",
            [
                outcome,
                finished_at,
                0 if give_back else counted,
                0 if give_back else used_credit,
                usage_id,
            ],
        )
        if give_back and used_credit:
            tx.execute(
                "UPDATE user_quotas SET credits = credits + 1 WHERE guild_id = ? AND user_id = ?",
                [guild_id, user_id],
            )
        return True

    async def mark_delivered(
        self,
        job_id: int,
        *,
        delivery: str,
        result_message_id: int | None,
        now: float,
        result_channel_id: int | None = None,
    ) -> None:
        """The outcome reached the requester. The interaction token is dropped: it is no longer needed."""
        await self._run(self._mark_delivered, job_id, delivery, result_message_id, result_channel_id, now)

    def _mark_delivered(
        self, job_id: int, delivery: str, message_id: int | None, channel_id: int | None, now: float
    ) -> None:
        with self._write() as tx:
            tx.execute(
                "UPDATE jobs SET status = CASE WHEN status = ? THEN ? ELSE status END,"
                " delivered_at = ?, delivery = ?, result_message_id = COALESCE(?, result_message_id),"
                " result_channel_id = COALESCE(?, result_channel_id), interaction_token = NULL WHERE id = ?",
                [
                    JobStatus.COMPLETED.value,
                    JobStatus.DELIVERED.value,
                    now,
                    delivery,
                    message_id,
                    channel_id,
                    job_id,
                ],
            )

    async def mark_undeliverable(self, job_id: int, *, retries: int, now: float) -> int:
        """Telling the requester failed again; returns how many times it has now failed. The job keeps
        its status for a later attempt while that count is within `retries`; past it, it is closed
        as `undeliverable` (never tried again, its token dropped)."""
        return await self._run(self._mark_undeliverable, job_id, retries, now)

    def _mark_undeliverable(self, job_id: int, retries: int, now: float) -> int:
        with self._write() as tx:
            row = tx.execute(
                "UPDATE jobs SET delivery = 'undeliverable', delivery_attempts ="
                " COALESCE(delivery_attempts, 0) + 1 WHERE id = ? RETURNING delivery_attempts",
                [job_id],
            ).fetchone()
            attempts = 0 if row is None else int(row[0])
            if attempts > retries:
                tx.execute(
                    "UPDATE jobs SET delivered_at = ?, interaction_token = NULL WHERE id = ?", [now, job_id]
                )
        return attempts

    async def abandon(self, job_id: int, reason: str, now: float) -> None:
        """An admitted job that could not even be acknowledged: ended as failed (so refunded) and
        closed, with nobody left to tell, in one transaction."""
        await self._run(self._abandon, job_id, reason, now)

    def _abandon(self, job_id: int, reason: str, now: float) -> None:
        with self._write() as tx:
            self._end_in(tx, job_id, JobStatus.FAILED, reason, now, True)
            tx.execute(
                "UPDATE jobs SET delivered_at = ?, delivery = 'none', interaction_token = NULL WHERE id = ?",
                [now, job_id],
            )

    async def mark_cancelled_by(self, job_id: int, user_id: int) -> None:
        await self._update(job_id, cancelled_by=user_id)

    async def mark_result_deleted(self, job_id: int, now: float) -> None:
        """The bot's image message was deleted; the job and usage rows stay."""
        await self._update(job_id, result_deleted_at=now)

    async def unfinished_jobs(self, guild_id: int, user_id: int | None, limit: int = 25) -> list[Job]:
        """Jobs still on their way, oldest first: one member's, or the whole guild's."""
        return await self._run(self._unfinished, guild_id, user_id, limit)

    def _unfinished(self, guild_id: int, user_id: int | None, limit: int) -> list[Job]:
        states = [s.value for s in (*_UNFINISHED, JobStatus.COMPLETED)]
        marks = ", ".join("?" for _ in states)
        who, params = ("AND user_id = ?", [user_id]) if user_id is not None else ("", [])
        rows = self._db.query(
            f"SELECT * FROM jobs WHERE guild_id = ? {who} AND status IN ({marks}) AND delivered_at IS NULL"
            " ORDER BY id LIMIT ?",
            [guild_id, *params, *states, limit],
        )
        return [Job.from_row(row) for row in rows]

    async def delivered_history(
        self,
        guild_id: int,
        user_id: int,
        limit: int,
        *,
        older_than: int | None = None,
        newer_than: int | None = None,
    ) -> tuple[list[Job], int]:
        """A page of a member's posted images, newest first, and how many there are in all (counted up
        to HISTORY_COUNT_CAP). Keyset-paged by job id: the page just older than job `older_than`, or
        just newer than job `newer_than`, or the newest page."""
        return await self._run(self._history, guild_id, user_id, limit, older_than, newer_than)

    def _history(
        self, guild_id: int, user_id: int, limit: int, older_than: int | None, newer_than: int | None
    ) -> tuple[list[Job], int]:
        # The WHERE matches the partial index jobs_history_posts, so both queries stay on the index.
        where = "guild_id = ? AND user_id = ? AND status = 'delivered' AND result_message_id IS NOT NULL"
        total = self._db.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_history_posts WHERE {where} LIMIT ?)",
            [guild_id, user_id, HISTORY_COUNT_CAP],
        ).fetchone()[0]
        if newer_than is not None:
            page, params = "AND id > ? ORDER BY id ASC LIMIT ?", [newer_than, limit]
        elif older_than is not None:
            page, params = "AND id < ? ORDER BY id DESC LIMIT ?", [older_than, limit]
        else:
            page, params = "ORDER BY id DESC LIMIT ?", [limit]
        rows = [
            Job.from_row(row)
            for row in self._db.query(
                f"SELECT * FROM jobs INDEXED BY jobs_history_posts WHERE {where} {page}",
                [guild_id, user_id, *params],
            )
        ]
        if newer_than is not None:
            rows.reverse()
        return rows, int(total)

    async def _update(self, job_id: int, **values: Any) -> None:
        await self._run(self._update_sync, job_id, values)

    def _update_sync(self, job_id: int, values: dict[str, Any]) -> None:
        with self._write() as tx:
            tx.update("jobs", job_id, values)

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
        with self._write() as tx:
            cursor = tx.execute(
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
