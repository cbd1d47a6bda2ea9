"""Submitting: a written job sent to the image service once, its task id recorded, retries where safe.

A request is retried only when it certainly did not reach the service (the job goes back to QUEUED
while it waits, so a restart may send it safely); an answer nobody can read, or any error nobody
foresaw, ends the job refunded with a clear message: no job stays `submitting` in a running process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.core.log_context import bind_job, log_context
from bot.core.models import Job, JobStatus, Stage
from bot.core.runner import job_states
from bot.core.runner.delivering import Deliverer
from bot.core.runner.outcome_texts import (
    MSG_BUSY,
    MSG_NOT_MADE,
    MSG_OUTAGE,
    MSG_UNAVAILABLE,
    MSG_UNKNOWN,
    MSG_UNREACHABLE,
    refused_text,
)
from bot.core.runner.ports import (
    ServiceBusy,
    ServiceError,
    ServiceKeyRefused,
    ServiceMalformed,
    ServiceRefused,
    ServiceUnreachable,
)
from bot.core.runner.retrying import retry
from bot.core.runner.shared import Parts
from bot.core.video_contract import DEFAULT_VIDEO_DURATION

log = logging.getLogger("bot.core.runner")


async def _send(p: Parts, job: Job) -> str:
    """One submit: an image task, or a video task (its length, and its shape only without a reference
    image, whose size then decides the video's)."""
    if job.media != "video":
        return await p.service.submit(job.full_prompt, job.aspect_ratio, job.reference_urls)
    image = job.reference_urls[0] if job.reference_urls else None
    return await p.service.submit_video(
        job.full_prompt,
        duration=job.video_seconds or DEFAULT_VIDEO_DURATION,
        aspect_ratio=None if image else job.aspect_ratio,
        resolution=None if image else job.video_resolution,
        image=image,
    )


class JobGone(Exception):
    """The job was cancelled (or ended) while its submit waited: stop quietly."""


class Submitter:
    def __init__(self, parts: Parts, deliverer: Deliverer) -> None:
        self.parts = parts
        self.deliverer = deliverer

    def start(self, job: Job) -> None:
        self.parts.registry.spawn_for(job.id, self.submit(job), "submits")

    def resume_sent(self, job: Job, task_id: str, submitted_at: float) -> None:
        """Follow a task sent before a restart (its id was recorded): never send it again."""
        self.parts.registry.spawn_for(
            job.id, self._guarded(job, self.record_submitted(job, task_id, submitted_at)), "submits"
        )

    async def submit(self, job: Job) -> None:
        await self._guarded(job, self._submit(job))

    async def _guarded(self, job: Job, work: Coroutine[Any, Any, None]) -> None:
        """The entry point's guard: any error nobody foresaw ends the job, refunded, with a clear text.
        A job that may have reached the service is `unknown` (never resent), one that did not `failed`."""
        bind_job(job)
        try:
            await work
        except JobGone:
            pass
        except Exception:
            log.exception("job %s: unexpected error while submitting", job.id)
            if job.status not in (JobStatus.QUEUED, JobStatus.SUBMITTING):
                return  # it ended, or runs and the poll loop follows it: its state is settled
            sent = job.status is JobStatus.SUBMITTING
            await self.deliverer.end(
                job, JobStatus.UNKNOWN if sent else JobStatus.FAILED, MSG_UNKNOWN if sent else MSG_NOT_MADE
            )

    async def _submit(self, job: Job) -> None:
        p = self.parts
        await p.progress(job, Stage.QUEUED, force=True)
        # A request made while the service is down waits for it (still QUEUED, so a restart may
        # send it safely), up to outage_queue_limit from now.
        deadline = p.clock.time() + p.config.outage_queue_limit
        if p.watch.down:
            await self._wait_for_service(job, deadline)
        await self._move(job, JobStatus.SUBMITTING)
        while True:
            try:
                task_id = await self._send_with_retries(job)
            except ServiceUnreachable as exc:
                if exc.reached_server:
                    log.warning("job %s: submit outcome unknown (%s); not retrying", job.id, exc.reason)
                    await self.deliverer.end(job, JobStatus.UNKNOWN, MSG_UNKNOWN)
                elif p.watch.down:
                    # Not this request's fault: wait for the service instead of spending attempts.
                    await self._move(job, JobStatus.QUEUED)
                    await self._wait_for_service(job, deadline)
                    await self._move(job, JobStatus.SUBMITTING)
                    continue
                else:
                    await self.deliverer.end(job, JobStatus.FAILED, MSG_UNREACHABLE)
                return
            except ServiceError as exc:
                await self._refused(job, exc)
                return
            except JobGone:
                raise
            except Exception:
                # Out of the client, not foreseen (a RecursionError on a deep answer, a bug): the request
                # may have started a task, so it is never resent.
                log.exception("job %s: the image service's answer to a submit could not be read", job.id)
                await self.deliverer.end(job, JobStatus.UNKNOWN, MSG_UNKNOWN)
                return
            break
        await self.record_submitted(job, task_id, p.clock.time())

    async def _send_with_retries(self, job: Job) -> str:
        """The submit, retried while the service is busy or certainly did not get it (not in an outage)."""
        p = self.parts

        async def send() -> str:
            try:
                task_id = await _send(p, job)
            except ServiceUnreachable:
                p.watch.failed()
                raise
            except ServiceError:
                p.watch.answered()
                raise
            p.watch.answered()
            return task_id

        def retriable(error: Exception) -> bool:
            if isinstance(error, ServiceBusy):
                return True
            return isinstance(error, ServiceUnreachable) and not error.reached_server and not p.watch.down

        def delay(attempt: int, error: Exception) -> float:
            if isinstance(error, ServiceBusy) and error.retry_after:
                return error.retry_after
            return p.config.submit_backoff * attempt

        return await retry(
            send,
            retry_on=retriable,
            attempts=p.config.submit_attempts,
            delay=delay,
            pause=lambda s: self._wait_requeued(job, s),
        )

    async def _refused(self, job: Job, exc: ServiceError) -> None:
        end = self.deliverer.end
        if isinstance(exc, ServiceBusy):
            await end(job, JobStatus.FAILED, MSG_BUSY)
        elif isinstance(exc, ServiceKeyRefused):
            log.error("job %s: the image API refused the key; check MOUNTSEA_API_KEY and the balance", job.id)
            await end(job, JobStatus.FAILED, MSG_UNAVAILABLE)
        elif isinstance(exc, ServiceRefused):
            await end(job, JobStatus.FAILED, refused_text(exc.reason))
        else:  # ServiceMalformed, or a 404 that a submit cannot mean: it may have started a task
            level = logging.WARNING if isinstance(exc, ServiceMalformed) else logging.ERROR
            log.log(level, "job %s: %s", job.id, exc.reason)
            await end(job, JobStatus.UNKNOWN, MSG_UNKNOWN)

    async def _move(self, job: Job, target: JobStatus) -> None:
        """QUEUED ⇄ SUBMITTING, in the table and in the store; JobGone if the job was cancelled meanwhile."""
        job_states.check(job, target)
        p = self.parts
        if target is JobStatus.SUBMITTING:
            moved = await p.persist(
                job, "mark it as being sent", lambda: p.store.jobs.mark_submitting(job.id)
            )
        else:
            moved = await p.persist(
                job, "put it back in the queue", lambda: p.store.jobs.mark_requeued(job.id)
            )
        if not moved:
            log.info("job %s was cancelled before it was sent", job.id)
            raise JobGone
        job.status = target

    async def _wait_requeued(self, job: Job, seconds: float) -> None:
        """Back to QUEUED while waiting: the request certainly did not reach the API, so a restart
        during this wait may submit it again safely."""
        await self._move(job, JobStatus.QUEUED)
        await self.parts.sleep(seconds)
        await self._move(job, JobStatus.SUBMITTING)

    async def _wait_for_service(self, job: Job, deadline: float) -> None:
        """Wait (QUEUED) until the image service answers again. Past `deadline` the job ends, refunded,
        with a clear message, and JobGone stops the submit."""
        p = self.parts
        await p.progress(job, Stage.SERVICE_DOWN, force=True)
        if await p.watch.wait_up(deadline - p.clock.time()):
            return
        log.warning("job %s: the image service stayed down past the queue limit; not sent", job.id)
        await self.deliverer.end(job, JobStatus.FAILED, MSG_OUTAGE)
        raise JobGone

    async def record_submitted(self, job: Job, task_id: str, submitted_at: float) -> None:
        """The API took the request: record its task id, retrying for as long as the database refuses
        (busy, full). Until then the job lives only in this coroutine, which keeps it: the member's slot
        stays taken, and the task is followed as soon as the row says RUNNING."""
        p = self.parts
        job.task_id = task_id
        job_states.check(job, JobStatus.RUNNING)

        async def write() -> bool:
            now = p.clock.time()
            delay = p.schedule.next_delay(now - submitted_at, p.durations.sample(job.kind))
            return await p.store.jobs.mark_running(job.id, task_id, submitted_at, now + delay)

        with log_context(task_id=task_id):
            try:
                recorded = await p.persist(job, f"record its task id {task_id}", write)
            except asyncio.CancelledError:
                # Shutting down before the database took it: the row says SUBMITTING without a task id,
                # so the next start tells the member the outcome is unknown. Say which task it was.
                log.error("job %s: shut down before task %s could be recorded", job.id, task_id)
                raise
            if not recorded:
                log.info("job %s was cancelled while its submit was in flight (task %s)", job.id, task_id)
                return
            job.status, job.submitted_at = JobStatus.RUNNING, submitted_at
            log.info("job %s: following task %s", job.id, task_id)
            p.durations.started(job, submitted_at)
            p.wake()
            await p.progress(job, Stage.SUBMITTED, force=True)
