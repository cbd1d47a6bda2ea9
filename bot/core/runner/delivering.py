"""Delivering: a job's outcome to its requester — its images downloaded and posted, or why it ended.

Ending a job (`end`) and telling the requester are here too: every stage ends jobs through it, so a job
is refunded, told once and recorded as told in the same way wherever it stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.core.delivery_pool import MSG_FAILED, DeliveryPool
from bot.core.image_file import ImageFile
from bot.core.log_context import bind_job
from bot.core.models import Job, JobStatus
from bot.core.runner import job_states
from bot.core.runner.outcome_texts import MSG_NOT_MADE, UNDELIVERABLE, msg_video_unusable
from bot.core.runner.ports import DeliveryReceipt, FetchFailed, VideoRefused
from bot.core.runner.retrying import growing, retry
from bot.core.runner.shared import Parts
from bot.core.texts import Text, stored

log = logging.getLogger("bot.core.runner")


class Deliverer:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        config = parts.config
        self.pool = DeliveryPool(config.delivery_concurrency, config.delivery_deadline)

    # -- ending ------------------------------------------------------------------------------------

    async def end(self, job: Job, status: JobStatus, reason: Text) -> None:
        """End an unfinished job without images (refunded unless it was cancelled) and tell the
        requester. Nothing happens if it had ended already: whoever ended it told them."""
        job_states.check(job, status)
        p = self.parts
        p.durations.dropped(job)
        kept = stored(reason)
        ended = lambda: p.store.jobs.mark_ended(job.id, status, kept, p.clock.time())  # noqa: E731
        if not await p.persist(job, "record its end", ended):
            return
        job.status, job.error = status, kept
        log.info("job %s ended %s: %s", job.id, status.value, reason)
        await self.tell_failure(job)

    async def tell_failure(self, job: Job) -> None:
        reason = job.error or stored(MSG_NOT_MADE)
        receipt = await self._tell(job, lambda: self.parts.sink.fail(job, reason))
        await self.record(job, DeliveryReceipt(receipt.delivery, None, receipt.channel_id))
        self.parts.last_progress.pop(job.id, None)

    # -- images ------------------------------------------------------------------------------------

    def deliver(self, job: Job) -> None:
        """Hand a completed job to the delivery pool and return: the caller's slot is free at once."""
        if self.parts.registry.begin_delivery(job.id):
            self.parts.registry.spawn_for(
                job.id, self.pool.run(lambda: self._deliver_now(job), job.result_urls)
            )

    async def _deliver_now(self, job: Job) -> None:
        bind_job(job)
        try:
            if job.media == "video":
                video = await self._fetch_video(job)
                if video is None:
                    return  # refused, refunded and told
                images = [video]
            else:
                images = await self.pool.fetch_all(
                    job.id, job.result_urls, lambda ref: self._download(job, ref)
                )
            elapsed = (job.finished_at or self.parts.clock.time()) - job.created_at
            try:
                receipt = await self._tell(job, lambda: self.parts.sink.deliver(job, images, elapsed))
            except VideoRefused as refused:
                await self._refuse_video(job, refused.text)
                return
            await self.record(job, receipt)
        except Exception:
            # Whatever broke (a bug, a file no check caught), the job must not stay in limbo: it is
            # retried later like an outcome the sink could not post, then closed as undeliverable.
            log.exception("job %s: unexpected error while delivering", job.id)
            await self._undeliverable(job)
        finally:
            self.parts.registry.end_delivery(job.id)
            self.parts.last_progress.pop(job.id, None)

    async def _fetch_video(self, job: Job) -> ImageFile | None:
        """The finished clip: the task's video links in turn (the likeliest first) until one gives an
        MP4. None when none does: the job is then failed, refunded and the member told why, for a
        video is only ever posted as a file, never as a link that expires."""
        why: Text = MSG_FAILED
        for ref in job.result_urls:
            [video] = await self.pool.fetch_all(job.id, [ref], lambda r: self._download(job, r))
            if video.data is not None:
                return video
            why = video.error or why
        await self._refuse_video(job, msg_video_unusable(why))
        return None

    async def _refuse_video(self, job: Job, reason: Text) -> None:
        p = self.parts
        kept = stored(reason)
        refused = lambda: p.store.jobs.mark_video_refused(job.id, kept, p.clock.time())  # noqa: E731
        if not await p.persist(job, "record that its video was refused", refused):
            log.info("job %s: its video was refused, but the job had already ended", job.id)
            return
        job_states.refuse_video(job)
        job.error = kept
        log.info("job %s: its video could not be used; refunded", job.id)
        await self.tell_failure(job)

    async def _download(self, job: Job, ref: str) -> Any:
        """One image, with retries for what may pass; its pixels checked before anything decodes it.
        What the member may read is the file's `error`; the details (host, status) only in the log."""
        fetcher = self.parts.fetcher
        attempts = self.parts.config.download_attempts

        tried = 0

        async def attempt() -> Any:
            nonlocal tried
            tried += 1
            return await (fetcher.fetch_video(ref) if job.media == "video" else fetcher.fetch(ref))

        def log_failure(attempt: int, error: Exception) -> None:
            detail = error.detail if isinstance(error, FetchFailed) else error
            log.warning("job %s: download attempt %s failed: %s", job.id, attempt, detail)

        try:
            return await retry(
                attempt,
                retry_on=lambda e: isinstance(e, FetchFailed) and not (e.blocked or e.permanent),
                attempts=attempts,
                delay=lambda attempt, _: attempt,
                pause=self.parts.sleep,
                on_retry=log_failure,
            )
        except FetchFailed as error:
            log_failure(tried, error)
            # A link the bot refuses to fetch is never shown to the member either.
            url = None if error.blocked or ref.startswith("data:") else ref
            return fetcher.unfetched(url, error.text or MSG_FAILED)

    # -- telling and recording ---------------------------------------------------------------------

    async def _tell(self, job: Job, send: Callable[[], Awaitable[DeliveryReceipt]]) -> DeliveryReceipt:
        """Run a sink call, retrying a few times: a sink that keeps failing (or hangs) must not wedge the
        job. The failures are logged in one line at the end; tracebacks only at DEBUG."""
        config = self.parts.config

        async def once() -> DeliveryReceipt:
            async with asyncio.timeout(config.tell_timeout):
                return await send()

        def debug(attempt: int, _: Exception) -> None:
            log.debug("job %s: telling the requester failed (attempt %s)", job.id, attempt, exc_info=True)

        try:
            return await retry(
                once,
                retry_on=lambda error: not isinstance(error, VideoRefused),
                attempts=config.tell_attempts,
                delay=growing(config.tell_backoff),
                pause=self.parts.sleep,
                on_retry=debug,
            )
        except VideoRefused:
            raise  # the sink's answer, not a failure to tell: the job is refused and refunded
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.debug("job %s: telling the requester failed (last attempt)", job.id, exc_info=True)
            log.warning(
                "job %s: telling the requester failed %s times (%s)",
                job.id,
                config.tell_attempts,
                error[:300],
            )
            return DeliveryReceipt(UNDELIVERABLE)

    async def record(self, job: Job, receipt: DeliveryReceipt) -> None:
        """Record how the outcome reached the requester, retrying while the database fails. If it never
        takes it, the job stays as it was and the next start looks for the post before posting again."""
        if receipt.delivery == UNDELIVERABLE:
            await self._undeliverable(job)
            return
        p = self.parts

        async def write() -> bool:
            await p.store.jobs.mark_delivered(
                job.id,
                delivery=receipt.delivery,
                result_message_id=receipt.message_id,
                result_channel_id=receipt.channel_id,
                now=p.clock.time(),
            )
            return True

        if await p.persist(job, "record its delivery", write, attempts=p.config.record_attempts):
            p.finished["completed" if job.status is JobStatus.COMPLETED else job.status.value] += 1
            if job.status is JobStatus.COMPLETED:
                job_states.advance(job, JobStatus.DELIVERED)
            job.delivered_at = p.clock.time()
            log.info("job %s delivered via %s", job.id, receipt.delivery)

    async def _undeliverable(self, job: Job) -> None:
        """Every way of telling the requester failed: try again later (a bounded number of times),
        then give up. One log line each time, never a traceback."""
        p = self.parts
        later = p.config.redeliver_delays
        failures = await p.persist(
            job,
            "record that it could not be delivered",
            lambda: p.store.jobs.mark_undeliverable(job.id, retries=len(later), now=p.clock.time()),
            attempts=p.config.record_attempts,
        )
        if failures is None:
            return
        if failures > len(later):
            p.finished["undeliverable"] += 1
            log.warning(
                "job %s: its outcome could not be delivered; gave up after %s tries", job.id, failures
            )
            return
        delay = later[failures - 1]
        log.warning("job %s: its outcome could not be delivered; trying again in %g s", job.id, delay)
        p.registry.spawn_for(job.id, self._tell_later(job, delay), "later")

    async def _tell_later(self, job: Job, delay: float) -> None:
        await self.parts.sleep(delay)
        if job.status is JobStatus.COMPLETED:
            self.deliver(job)
        else:
            await self.tell_failure(job)

    async def deliver_after_restart(self, job: Job) -> None:
        """A finished job the last process may have posted already (it died, or the database refused
        the record): look for that post first, and record it instead of posting a second copy."""
        bind_job(job)
        try:
            found = await self.parts.sink.find_delivery(job)
        except Exception as exc:  # noqa: BLE001 - one line; posting again is the safe fallback
            log.warning("job %s: could not look for an earlier post (%s); delivering", job.id, exc)
            found = None
        if found is not None:
            log.info(
                "job %s: its image was already posted (message %s); recording it", job.id, found.message_id
            )
            await self.record(job, found)
            return
        log.info("job %s: delivering a finished image after a restart", job.id)
        self.deliver(job)
