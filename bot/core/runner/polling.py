"""Polling: the one poll loop of this process follows every running task on the learned schedule,
pauses for an outage (one probe at a time instead) and hands finished jobs to delivery.

A poll whose answer cannot be read counts as a failed request and is retried with backoff; an error
nobody foresaw ends the job, refunded, instead of leaving it to wait for its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bot.core.log_context import bind_job, log_context
from bot.core.models import Job, JobStatus, Stage
from bot.core.outage import backoff_delay, retry_after_delay
from bot.core.runner import job_states
from bot.core.runner.delivering import Deliverer
from bot.core.runner.outcome_texts import (
    MSG_LOST,
    MSG_NO_IMAGE,
    MSG_NO_VIDEO,
    MSG_NOT_MADE,
    end_text,
    refused_poll_text,
    timed_out_text,
)
from bot.core.runner.poll_records import PollRecords
from bot.core.runner.ports import (
    PollRecord,
    ServiceBusy,
    ServiceError,
    ServiceKeyRefused,
    ServiceRefused,
    ServiceUnreachable,
    TaskReport,
    TaskUnknown,
)
from bot.core.runner.retrying import doubling, retry
from bot.core.runner.shared import Parts

log = logging.getLogger("bot.core.runner")

# While more polls are due than the concurrency allows, claim once a quarter of the slots are free.
CLAIM_SHARE = 4

# A probe during an outage asks about a task that does not exist: any answer but a 5xx, a time-out or
# a broken connection shows that the service is back.
PROBE_TASK_ID = "imagine-bot-outage-probe"


class Poller:
    def __init__(self, parts: Parts, deliverer: Deliverer) -> None:
        self.parts = parts
        self.deliverer = deliverer
        self._wake = asyncio.Event()
        self.loop_ran_at = time.monotonic()  # read by /healthz
        self.records = PollRecords(self._write_records, parts.registry.spawn)
        # The last claim took every free slot: more polls are due than fit, so the next claim waits
        # for a few free slots instead of taking one row per finished poll (see `_poll_due`).
        self._behind = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        p = self.parts
        while not p.closing:
            self.loop_ran_at = time.monotonic()
            self._wake.clear()
            now = p.clock.time()
            wait = await (self._probe(now) if p.watch.down else self._poll_due(now))
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), p.clock.real_seconds(wait))

    async def _poll_due(self, now: float) -> float:
        """Start the polls that are due; return how long to sleep."""
        p = self.parts
        # While a failure is unexplained, one poll at a time: if the service is down, the runner
        # learns it from a few requests, not from a burst of every due job.
        limit = 1 if p.watch.suspect else p.config.concurrency
        free = limit - p.registry.polls_in_flight
        if self._behind and 0 < free < max(1, limit // CLAIM_SHARE):
            # Behind: every finished poll would claim one row, a transaction each. Wait for a few
            # free slots (each finishing poll wakes the loop) and claim them together.
            return p.config.idle_wait
        next_at: float | None = None
        try:
            if p.watch.recovered:
                # The service is back: every running job is due now, not at its backed-off time.
                p.watch.recovered = False
                await p.store.jobs.reset_leases(p.source, now)
            claimed = 0
            if free > 0:
                for job in await p.store.jobs.claim_due(p.source, now, free, p.registry.lease):
                    p.registry.spawn_for(job.id, self._poll_one(job), poll=True)
                    claimed += 1
            self._behind = free > 0 and claimed == free
            if not self._behind:  # else a finishing poll wakes the loop: no need to ask
                next_at = await p.store.jobs.next_poll_time(p.source)
        except Exception:
            log.exception("poll loop: database error; retrying")
            self._behind, next_at = False, now + 5.0
        if p.registry.polls_in_flight >= limit:
            return p.config.idle_wait  # a finishing poll wakes the loop
        return p.config.idle_wait if next_at is None else max(0.0, next_at - now)

    async def _write_records(self, records: list[PollRecord]) -> set[int]:
        """One group of poll outcomes, retried while the database refuses: a deadlock with another
        process's multi-row write (lease renewals) or a busy database is not the polls' fault."""
        p = self.parts
        records = sorted(records, key=lambda record: record.job_id)  # rows locked in one order

        def warn(attempt: int, error: Exception) -> None:
            if attempt == 1:
                log.warning("could not record %s polls (%s); retrying", len(records), error)

        return await retry(
            lambda: p.store.jobs.record_polls(records),
            retry_on=lambda error: isinstance(error, p.store.errors),
            attempts=p.config.record_attempts,
            delay=doubling(p.config.record_backoff, p.config.record_backoff_max),
            on_retry=warn,
        )

    def poll_now(self, job: Job) -> None:
        """Poll a job this process has just claimed outside the loop (taken over from a dead one)."""
        self.parts.registry.spawn_for(job.id, self._poll_one(job), poll=True)

    async def _probe(self, now: float) -> float:
        """During an outage: one request at a time, at growing intervals, instead of every job's
        polls. Returns how long to sleep."""
        p = self.parts
        guard = p.watch.guard
        if now < guard.next_probe_at:
            return guard.next_probe_at - now
        try:
            await p.service.poll(PROBE_TASK_ID)
        except ServiceUnreachable as exc:
            guard.probe_failed(p.clock.time())
            log.info("image API still down (%s); next probe in %.0f s", exc.reason, self._next_probe_in())
            return self._next_probe_in()
        except ServiceError:
            pass  # an answer, even a refusal: the service is back
        except Exception:
            log.exception("outage probe failed unexpectedly")
            guard.probe_failed(p.clock.time())
            return self._next_probe_in()
        p.watch.answered()
        return 0.0

    def _next_probe_in(self) -> float:
        return max(0.0, self.parts.watch.guard.next_probe_at - self.parts.clock.time())

    async def _poll_one(self, job: Job) -> None:
        """The entry point of one poll: whatever goes wrong, the job ends in a state, never in limbo."""
        bind_job(job)
        try:
            await self._poll(job)
        except Exception:
            log.exception("job %s: unexpected error while polling", job.id)
            if job_states.allowed(job.status, JobStatus.FAILED):  # not once its image is made
                await self.deliverer.end(job, JobStatus.FAILED, MSG_NOT_MADE)

    async def _poll(self, job: Job) -> None:
        p = self.parts
        assert job.task_id is not None and job.submitted_at is not None
        now = p.clock.time()
        # Time the service was down does not count: an outage shorter than the limit times out nothing.
        if now - job.submitted_at > p.config.time_limit + p.watch.downtime(job.submitted_at, now):
            await self.deliverer.end(job, JobStatus.TIMED_OUT, timed_out_text(p.config.time_limit))
            return
        p.durations.started(job, job.submitted_at)
        history = p.durations.sample(job.kind)
        report = await self._ask(job)
        if report is None:
            return
        with log_context(trace_id=report.trace_id):
            now = p.clock.time()
            if report.is_running:
                delay = p.schedule.next_delay(now - job.submitted_at, history)
                still_running = await self.records.record(
                    PollRecord(job.id, now + delay, 0, api_status=report.status, trace_id=report.trace_id)
                )
                job.poll_count += 1
                log.debug("job %s: task %s is %s", job.id, job.task_id, report.status)
                if still_running:
                    await p.progress(job, Stage.RENDERING)
                else:
                    p.durations.dropped(job)  # cancelled while this poll was out
                return
            await self._finished(job, report, now)

    async def _ask(self, job: Job) -> TaskReport | None:
        """The poll itself; None when the job was dealt with (retried later or ended)."""
        p = self.parts
        assert job.task_id is not None
        try:
            report = await p.service.poll(job.task_id)
        except ServiceBusy as exc:
            p.watch.answered()
            await self._retry(job, exc.retry_after)
        except ServiceUnreachable as exc:
            log.info("job %s: poll failed (%s)", job.id, exc.reason)
            p.watch.failed()
            await self._retry(job, None)
        except ServiceKeyRefused:
            p.watch.answered()
            log.error("job %s: the image API refused the key while polling", job.id)
            await self._retry(job, None)
        except ServiceRefused as exc:
            p.watch.answered()
            log.warning("job %s: the image API refused a poll: %s", job.id, exc.reason)
            await self.deliverer.end(job, JobStatus.FAILED, refused_poll_text(exc.reason))
        except TaskUnknown:
            p.watch.answered()
            if job.poll_errors >= 2:
                await self.deliverer.end(job, JobStatus.FAILED, MSG_LOST)
            else:
                await self._retry(job, None)
        except Exception as exc:  # noqa: BLE001 - an unreadable answer (malformed, too deep, ...)
            reason = (
                exc.reason if isinstance(exc, ServiceError) else f"{type(exc).__name__} reading the answer"
            )
            log.info("job %s: poll failed (%s)", job.id, reason)
            p.watch.failed()
            await self._retry(job, None)
        else:
            p.watch.answered()
            return report
        return None

    async def _finished(self, job: Job, report: TaskReport, now: float) -> None:
        p = self.parts
        log.info("job %s: task %s ended %s (trace %s)", job.id, job.task_id, report.status, report.trace_id)
        if report.status != "completed":
            await self.deliverer.end(job, JobStatus.FAILED, end_text(report))
            return
        # A video task's result is read for video links (the bytes are checked when fetched).
        refs = report.video_refs if job.media == "video" else report.image_refs
        if not refs:
            await self.deliverer.end(
                job, JobStatus.FAILED, MSG_NO_VIDEO if job.media == "video" else MSG_NO_IMAGE
            )
            return
        job_states.check(job, JobStatus.COMPLETED)
        if not await p.store.jobs.mark_completed(job.id, refs, now, report.trace_id):
            log.info("job %s finished upstream after it was cancelled; not delivering", job.id)
            p.durations.dropped(job)
            return
        assert job.submitted_at is not None
        p.durations.finished(job, now - job.submitted_at)
        job.status, job.result_urls, job.finished_at = JobStatus.COMPLETED, refs, now
        self.deliverer.deliver(job)

    async def _retry(self, job: Job, retry_after: float | None) -> None:
        p = self.parts
        errors = job.poll_errors + 1
        if retry_after is not None:
            delay = retry_after_delay(retry_after, p.rng)  # as the API asked, never stretched
        else:
            delay = backoff_delay(errors, p.schedule.min_interval, p.schedule.max_interval, p.rng)
        if not await self.records.record(PollRecord(job.id, p.clock.time() + delay, errors)):
            p.durations.dropped(job)
