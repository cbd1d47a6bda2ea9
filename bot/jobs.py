"""The job runner: persist, submit, follow every running task in one poll loop, hand outcomes to a sink.

No Discord here: the bot, the terminal command and the benchmark each plug in their own sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from bot.api import (
    ApiError,
    BadKeyError,
    ImageApi,
    MalformedAnswerError,
    RateLimitedError,
    RefusedError,
    TaskNotFoundError,
    TaskStatus,
    TransientError,
    extract_images,
)
from bot.clock import Clock, SystemClock
from bot.delivery import DownloadError, ImageFile, download_image
from bot.models import ImageRequest, Job, JobStatus, Origin, Stage
from bot.outage import OutageGuard, OutagePolicy, backoff_delay, retry_after_delay
from bot.quotas import Decision, Member
from bot.schedule import Cohort, PollSchedule, typical_duration
from bot.store import Store

log = logging.getLogger(__name__)

# What the requester reads when a job ends without an image. Never a raw payload or a traceback.
MSG_UNAVAILABLE = "The image service is unavailable right now. The bot's operator has been told."
MSG_UNREACHABLE = "The image service could not be reached, so nothing was started. Please try again shortly."
MSG_BUSY = "The image service is too busy right now, so nothing was started. Please try again in a minute."
MSG_UNKNOWN = (
    "The image service did not confirm that it received this request, so the bot cannot follow it. "
    "It was not retried, so that you are not charged twice. Please try again."
)
MSG_INTERRUPTED = (
    "The bot restarted while sending this request, and cannot tell whether the image service received "
    "it. It was not sent again, so that you are not charged twice. Please try again."
)
MSG_NO_IMAGE = "The image service finished but returned no image."
MSG_LOST = "The image service no longer knows this request."
MSG_OUTAGE = (
    "The image service has not been answering for a while, so this request was not sent. "
    "It does not count against your quota. Please try again later."
)
# A probe during an outage asks about a task that does not exist: any answer but a 5xx, a time-out or
# a broken connection shows that the service is back.
PROBE_TASK_ID = "imagine-bot-outage-probe"


@dataclass(frozen=True)
class DeliveryReceipt:
    """How the outcome reached the requester (`channel`, `interaction`, `dm`, `file`, ...)."""

    delivery: str
    message_id: int | None = None
    channel_id: int | None = None


class JobSink(Protocol):
    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None: ...

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt: ...

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt: ...


@dataclass(frozen=True)
class RunnerConfig:
    time_limit: float = 600.0
    concurrency: int = 16
    max_result_bytes: int = 50 * 1024 * 1024
    status_update_interval: float = 3.0
    submit_attempts: int = 3
    submit_backoff: float = 2.0
    idle_wait: float = 30.0
    lease: float = 120.0
    shutdown_grace: float = 5.0
    download_attempts: int = 3
    history_size: int = 400  # what the poll schedule learns from (bench.mixes: 200 was noisier)
    eta_window: int = 50  # the ETA members see: the median of the latest jobs of the kind
    outage_failures: int = 3  # failed requests in a row, across jobs, that make an outage
    outage_queue_limit: float = 300.0  # how long a new request waits for the service to come back


def _refused_poll_reason(reason: str) -> str:
    return f"The image service refused to report on this request ({reason}), so the bot stopped following it."


def _end_reason(status: TaskStatus) -> str:
    detail = f": {status.error_message}" if status.error_message else ""
    if status.status == "cancelled":
        return f"The image service cancelled this request{detail}."
    if status.status == "timeout":
        return f"The image service timed out on this request{detail}."
    return f"The image service could not make this image{detail or '.'}"


class JobRunner:
    def __init__(
        self,
        store: Store,
        api: ImageApi,
        session: aiohttp.ClientSession,
        sink: JobSink,
        config: RunnerConfig | None = None,
        *,
        schedule: PollSchedule | None = None,
        source: str = "discord",
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.api = api
        self.session = session
        self.sink = sink
        self.config = config or RunnerConfig()
        self.schedule = schedule or PollSchedule()
        self.source = source
        self.clock: Clock = clock or SystemClock()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._submits: set[asyncio.Task[Any]] = set()
        self._workers: set[asyncio.Task[Any]] = set()
        self._polling = 0
        self._delivering: set[int] = set()
        self._last_progress: dict[int, float] = {}
        self._history: dict[bool, list[float]] = {}
        # What the poll schedule plans from: per kind, the latest submitted jobs (finished or still
        # running), and its sample of durations, refreshed at most once a second of the clock.
        self._cohorts: dict[bool, Cohort] = {}
        self._planning: dict[bool, tuple[float, list[float]]] = {}
        self._closing = False
        self._rng = random.Random()
        # Probes at most half of POLL_MAX_INTERVAL apart: the backlog of images that finished during
        # the outage takes a few seconds to deliver, and each should arrive within POLL_MAX_INTERVAL
        # of the service's return.
        self._outage = OutageGuard(
            OutagePolicy(self.config.outage_failures, self.schedule.max_interval / 2), self._rng
        )
        self._service_up = asyncio.Event()
        self._service_up.set()
        self._recovered = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume what a previous process left, then start the poll loop."""
        history_text = await self.store.recent_durations(False, self.config.history_size)
        history_refs = await self.store.recent_durations(True, self.config.history_size)
        self._history = {False: history_text, True: history_refs}
        size = self.config.history_size
        self._cohorts = {False: Cohort(size, history_text), True: Cohort(size, history_refs)}
        await self._resume()
        self._loop_task = asyncio.create_task(self._poll_loop(), name="job-poll-loop")

    async def stop(self) -> None:
        self._closing = True
        if self._loop_task is not None:
            self._loop_task.cancel()
        # A submit cut off now would leave its outcome unknown, and a delivery cut off between the
        # upload and its row update would be repeated after a restart: give in-flight work a moment.
        in_flight = self._submits | self._workers
        if in_flight:
            await asyncio.wait(in_flight, timeout=self.config.shutdown_grace)
        pending = [t for t in (*self._submits, *self._workers) if not t.done()]
        if self._loop_task is not None:
            pending.append(self._loop_task)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any], group: set[asyncio.Task[Any]]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        group.add(task)
        task.add_done_callback(group.discard)
        return task

    # -- intake ----------------------------------------------------------------------------------

    async def enqueue(self, request: ImageRequest, origin: Origin) -> Job:
        """Write the job, then submit it in the background. The row exists before any HTTP call."""
        job = await self.store.create_job(request, origin, self.clock.time())
        if self._closing:
            # Shutting down: the row stays QUEUED and the next start submits it.
            log.info("job %s queued during shutdown; it will be submitted after the restart", job.id)
            return job
        log.info("job %s queued (guild %s, user %s)", job.id, job.guild_id, job.user_id)
        self._spawn(self._submit(job), self._submits)
        return job

    async def admit(
        self, request: ImageRequest, origin: Origin, member: Member, default_quota: int
    ) -> tuple[Decision, Job | None]:
        """Check bans, prompt rules and quotas and reserve a use, in one transaction. An admitted job is
        written QUEUED but not sent: `launch` sends it once the requester has been acknowledged."""
        return await self.store.admit(member, request, origin, self.clock.time(), default_quota)

    async def launch(self, job: Job, message_id: int | None) -> None:
        if message_id is not None:
            await self.store.set_message_id(job.id, message_id)
            job.message_id = message_id
        if self._closing:
            log.info("job %s admitted during shutdown; it will be submitted after the restart", job.id)
            return
        self._spawn(self._submit(job), self._submits)

    async def abandon(self, job: Job, reason: str) -> None:
        """An admitted job that could not be acknowledged: refunded, and nobody left to tell."""
        await self.store.mark_ended(job.id, JobStatus.FAILED, reason, self.clock.time())
        await self.store.mark_delivered(
            job.id, delivery="none", result_message_id=None, now=self.clock.time()
        )

    async def cancel(self, job: Job, by_user: int, *, refund: bool) -> bool:
        """Stop following a job. The API has no cancel route, so the task may still run (and be
        billed) upstream; the job just ends here. False if it had already finished or ended."""
        reason = "Cancelled by the requester." if by_user == job.user_id else "Cancelled by a moderator."
        now = self.clock.time()
        if not await self.store.mark_ended(job.id, JobStatus.CANCELLED, reason, now, refund=refund):
            return False
        await self.store.mark_cancelled_by(job.id, by_user)
        self._cohort(job).dropped(job.id)
        job.status, job.error, job.cancelled_by = JobStatus.CANCELLED, reason, by_user
        self._last_progress.pop(job.id, None)
        log.info("job %s cancelled by %s (refund %s)", job.id, by_user, refund)
        return True

    def typical_duration(self, has_refs: bool) -> float | None:
        return typical_duration(self._history.get(has_refs, [])[: self.config.eta_window])

    async def _submit(self, job: Job) -> None:
        await self._progress(job, Stage.QUEUED, force=True)
        # A request made while the service is down waits for it (still QUEUED, so a restart may
        # send it safely), up to outage_queue_limit from now.
        deadline = self.clock.time() + self.config.outage_queue_limit
        if self._outage.down and not await self._wait_for_service(job, deadline):
            return
        if not await self.store.mark_submitting(job.id):
            log.info("job %s was cancelled before it was sent", job.id)
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                task_id = await self.api.submit(job.prompt, job.aspect_ratio, job.reference_urls)
            except RateLimitedError as exc:
                self._answered()
                if attempt >= self.config.submit_attempts:
                    await self._end(job, JobStatus.FAILED, MSG_BUSY)
                    return
                if not await self._wait_before_resubmit(
                    job, exc.retry_after or self.config.submit_backoff * attempt
                ):
                    return
                continue
            except TransientError as exc:
                self._failed()
                if exc.reached_server:
                    log.warning("job %s: submit outcome unknown (%s); not retrying", job.id, exc.reason)
                    await self._end(job, JobStatus.UNKNOWN, MSG_UNKNOWN)
                    return
                if self._outage.down:
                    # Not this request's fault: wait for the service instead of spending attempts.
                    if not await self.store.mark_requeued(job.id):
                        return
                    if not await self._wait_for_service(job, deadline):
                        return
                    if not await self.store.mark_submitting(job.id):
                        return
                    attempt = 0
                    continue
                if attempt >= self.config.submit_attempts:
                    await self._end(job, JobStatus.FAILED, MSG_UNREACHABLE)
                    return
                if not await self._wait_before_resubmit(job, self.config.submit_backoff * attempt):
                    return
                continue
            except MalformedAnswerError as exc:
                self._answered()
                log.warning("job %s: %s", job.id, exc.reason)
                await self._end(job, JobStatus.UNKNOWN, MSG_UNKNOWN)
                return
            except BadKeyError:
                self._answered()
                log.error(
                    "job %s: the image API refused the key; check MOUNTSEA_API_KEY and the balance", job.id
                )
                await self._end(job, JobStatus.FAILED, MSG_UNAVAILABLE)
                return
            except RefusedError as exc:
                self._answered()
                await self._end(
                    job, JobStatus.FAILED, f"The image service refused this request: {exc.reason}"
                )
                return
            self._answered()
            break
        now = self.clock.time()
        delay = self.schedule.next_delay(0.0, self._planning_history(job.has_references))
        if not await self.store.mark_running(job.id, task_id, now, now + delay):
            log.info("job %s was cancelled while its submit was in flight (task %s)", job.id, task_id)
            return
        job.status, job.task_id, job.submitted_at = JobStatus.RUNNING, task_id, now
        self._cohort(job).started(job.id, now)
        self.wake()
        await self._progress(job, Stage.SUBMITTED, force=True)

    async def _wait_for_service(self, job: Job, deadline: float) -> bool:
        """Wait (QUEUED) until the image service answers again. Past `deadline` the job ends,
        refunded, with a clear message; False then, and the caller stops."""
        await self._progress(job, Stage.SERVICE_DOWN, force=True)
        left = deadline - self.clock.time()
        if left > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._service_up.wait(), self.clock.real_seconds(left))
        if self._service_up.is_set():
            return True
        log.warning("job %s: the image service stayed down past the queue limit; not sent", job.id)
        await self._end(job, JobStatus.FAILED, MSG_OUTAGE)
        return False

    async def _wait_before_resubmit(self, job: Job, seconds: float) -> bool:
        """Back to QUEUED while waiting: the request certainly did not reach the API, so a restart
        during this wait may submit it again safely. False if the job was cancelled meanwhile."""
        if not await self.store.mark_requeued(job.id):
            return False
        await asyncio.sleep(self.clock.real_seconds(seconds))
        return await self.store.mark_submitting(job.id)

    # -- the poll loop -----------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while not self._closing:
            self._wake.clear()
            now = self.clock.time()
            if self._outage.down:
                wait = await self._probe(now)
            else:
                wait = await self._poll_due(now)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.clock.real_seconds(wait))

    async def _poll_due(self, now: float) -> float:
        """Start the polls that are due; return how long to sleep."""
        # While a failure is unexplained, one poll at a time: if the service is down, the runner
        # learns it from a few requests, not from a burst of every due job.
        limit = 1 if self._outage.suspect else self.config.concurrency
        free = limit - self._polling
        try:
            if self._recovered:
                # The service is back: every running job is due now, not at its backed-off time.
                self._recovered = False
                await self.store.reset_leases(self.source, now)
            if free > 0:
                for job in await self.store.claim_due_jobs(self.source, now, free, self.config.lease):
                    self._polling += 1
                    self._spawn(self._poll_one(job), self._workers)
            next_at = await self.store.next_poll_time(self.source)
        except Exception:
            log.exception("poll loop: database error; retrying")
            next_at = now + 5.0
        if self._polling >= limit:
            return self.config.idle_wait  # a finishing poll wakes the loop
        return self.config.idle_wait if next_at is None else max(0.0, next_at - now)

    async def _probe(self, now: float) -> float:
        """During an outage: one request at a time, at growing intervals, instead of every job's
        polls. Returns how long to sleep."""
        if now < self._outage.next_probe_at:
            return self._outage.next_probe_at - now
        try:
            await self.api.poll(PROBE_TASK_ID)
        except TransientError as exc:
            self._outage.probe_failed(self.clock.time())
            log.info("image API still down (%s); next probe in %.0f s", exc.reason, self._next_probe_in())
            return self._next_probe_in()
        except ApiError:
            pass  # an answer, even a refusal: the service is back
        except Exception:
            log.exception("outage probe failed unexpectedly")
            self._outage.probe_failed(self.clock.time())
            return self._next_probe_in()
        self._answered()
        return 0.0

    def _next_probe_in(self) -> float:
        return max(0.0, self._outage.next_probe_at - self.clock.time())

    def _answered(self) -> None:
        """The image API answered a request: an outage, if there was one, is over."""
        now = self.clock.time()
        if self._outage.answered(now):
            log.warning("image API answers again; polling every running job now")
            self._recovered = True
            self._service_up.set()
            self.wake()

    def _failed(self) -> None:
        """A request to the image API met a transient error (5xx, time-out, broken connection)."""
        if self._outage.failed(self.clock.time()):
            log.warning(
                "image API: %s failed requests in a row; pausing polls and probing once at a time",
                self._outage.policy.failures,
            )
            self._service_up.clear()
            self.wake()

    async def _poll_one(self, job: Job) -> None:
        try:
            await self._poll(job)
        except Exception:
            # One job's bug must not kill the loop; the lease brings it back later.
            log.exception("job %s: unexpected error while polling", job.id)
        finally:
            self._polling -= 1
            self.wake()

    async def _poll(self, job: Job) -> None:
        assert job.task_id is not None and job.submitted_at is not None
        now = self.clock.time()
        age = now - job.submitted_at
        # Time the service was down does not count: an outage shorter than the limit times out nothing.
        if age > self.config.time_limit + self._outage.downtime(job.submitted_at, now):
            minutes = self.config.time_limit / 60
            await self._end(
                job,
                JobStatus.TIMED_OUT,
                f"The image took longer than {minutes:g} minutes, so the bot stopped waiting for it.",
            )
            return
        self._cohort(job).started(job.id, job.submitted_at)
        history = self._planning_history(job.has_references)
        try:
            status = await self.api.poll(job.task_id)
        except RateLimitedError as exc:
            self._answered()
            await self._retry_poll(job, exc.retry_after)
            return
        except (TransientError, MalformedAnswerError) as exc:
            log.info("job %s: poll failed (%s)", job.id, exc.reason)
            self._failed()
            await self._retry_poll(job, None)
            return
        except BadKeyError:
            self._answered()
            log.error("job %s: the image API refused the key while polling", job.id)
            await self._retry_poll(job, None)
            return
        except RefusedError as exc:
            self._answered()
            log.warning("job %s: the image API refused a poll: %s", job.id, exc.reason)
            await self._end(job, JobStatus.FAILED, _refused_poll_reason(exc.reason))
            return
        except TaskNotFoundError:
            self._answered()
            if job.poll_errors >= 2:
                await self._end(job, JobStatus.FAILED, MSG_LOST)
            else:
                await self._retry_poll(job, None)
            return
        self._answered()

        now = self.clock.time()
        if status.is_running:
            delay = self.schedule.next_delay(now - job.submitted_at, history)
            still_running = await self.store.record_poll(
                job.id,
                api_status=status.status,
                trace_id=status.trace_id,
                next_poll_at=now + delay,
                poll_errors=0,
            )
            job.poll_count += 1
            if still_running:
                await self._progress(job, Stage.RENDERING)
            else:
                self._cohort(job).dropped(job.id)  # cancelled while this poll was out
            return
        log.info("job %s: task %s ended %s (trace %s)", job.id, job.task_id, status.status, status.trace_id)
        if status.status != "completed":
            await self._end(job, JobStatus.FAILED, _end_reason(status), trace_id=status.trace_id)
            return
        images = extract_images(status.result)
        if not images:
            await self._end(job, JobStatus.FAILED, MSG_NO_IMAGE, trace_id=status.trace_id)
            return
        refs = [image.ref for image in images]
        if not await self.store.mark_completed(job.id, refs, now, status.trace_id):
            log.info("job %s finished upstream after it was cancelled; not delivering", job.id)
            self._cohort(job).dropped(job.id)
            return
        self._learn(job, now - job.submitted_at)
        job.status, job.result_urls, job.finished_at = JobStatus.COMPLETED, refs, now
        await self._deliver(job)

    async def _retry_poll(self, job: Job, retry_after: float | None) -> None:
        errors = job.poll_errors + 1
        if retry_after is not None:
            delay = retry_after_delay(retry_after, self._rng)  # as the API asked, never stretched
        else:
            delay = backoff_delay(errors, self.schedule.min_interval, self.schedule.max_interval, self._rng)
        if not await self.store.record_poll(
            job.id, api_status=None, trace_id=None, next_poll_at=self.clock.time() + delay, poll_errors=errors
        ):
            self._cohort(job).dropped(job.id)

    def _cohort(self, job: Job) -> Cohort:
        return self._cohorts.setdefault(job.has_references, Cohort(self.config.history_size))

    def _learn(self, job: Job, duration: float) -> None:
        history = self._history.setdefault(job.has_references, [])
        history.insert(0, duration)
        del history[self.config.history_size :]
        self._cohort(job).finished(job.id, duration)
        self._planning.pop(job.has_references, None)

    def _planning_history(self, has_refs: bool) -> list[float]:
        now = self.clock.time()
        cached = self._planning.get(has_refs)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        cohort = self._cohorts.setdefault(has_refs, Cohort(self.config.history_size))
        sample = cohort.sample(now)
        self._planning[has_refs] = (now, sample)
        return sample

    # -- outcomes ----------------------------------------------------------------------------------

    async def _progress(self, job: Job, stage: Stage, *, force: bool = False) -> None:
        now = self.clock.time()
        last = self._last_progress.get(job.id)
        if not force and last is not None and now - last < self.config.status_update_interval:
            return
        self._last_progress[job.id] = now
        try:
            await self.sink.progress(
                job, stage, now - job.created_at, self.typical_duration(job.has_references)
            )
        except Exception:
            log.exception("job %s: progress update failed", job.id)

    async def _deliver(self, job: Job) -> None:
        if job.id in self._delivering:
            return
        self._delivering.add(job.id)
        try:
            images = [await self._download(job, ref) for ref in job.result_urls]
            elapsed = (job.finished_at or self.clock.time()) - job.created_at
            receipt = await self._tell(job, lambda: self.sink.deliver(job, images, elapsed))
            await self.store.mark_delivered(
                job.id,
                delivery=receipt.delivery,
                result_message_id=receipt.message_id,
                result_channel_id=receipt.channel_id,
                now=self.clock.time(),
            )
            log.info("job %s delivered via %s", job.id, receipt.delivery)
        finally:
            self._delivering.discard(job.id)
            self._last_progress.pop(job.id, None)

    async def _download(self, job: Job, ref: str) -> ImageFile:
        last_error = "unknown error"
        for attempt in range(1, self.config.download_attempts + 1):
            try:
                return await download_image(self.session, ref, max_bytes=self.config.max_result_bytes)
            except DownloadError as exc:
                last_error = str(exc)
                log.warning("job %s: download attempt %s failed: %s", job.id, attempt, exc)
                if attempt < self.config.download_attempts:
                    await asyncio.sleep(self.clock.real_seconds(attempt))
        url = None if ref.startswith("data:") else ref
        return ImageFile(url=url, data=None, error=last_error)

    async def _end(self, job: Job, status: JobStatus, reason: str, *, trace_id: str | None = None) -> None:
        self._cohort(job).dropped(job.id)
        if not await self.store.mark_ended(job.id, status, reason, self.clock.time()):
            return  # it had already ended (e.g. cancelled): whoever ended it told the requester
        job.status, job.error = status, reason
        log.info("job %s ended %s: %s", job.id, status.value, reason)
        await self._tell_failure(job)

    async def _tell_failure(self, job: Job) -> None:
        reason = job.error or "The image could not be made."
        receipt = await self._tell(job, lambda: self.sink.fail(job, reason))
        await self.store.mark_delivered(
            job.id, delivery=receipt.delivery, result_message_id=None, now=self.clock.time()
        )
        self._last_progress.pop(job.id, None)

    async def _tell(self, job: Job, send: Any) -> DeliveryReceipt:
        """Run a sink call, retrying a few times: a sink that keeps failing must not wedge the job."""
        for attempt in range(1, 4):
            try:
                receipt: DeliveryReceipt = await send()
            except Exception:
                log.exception("job %s: telling the requester failed (attempt %s)", job.id, attempt)
                if attempt < 3:
                    await asyncio.sleep(self.clock.real_seconds(2.0 * attempt))
            else:
                return receipt
        return DeliveryReceipt("undeliverable")

    # -- restart -----------------------------------------------------------------------------------

    async def _resume(self) -> None:
        now = self.clock.time()
        await self.store.reset_leases(self.source, now)
        for job in await self.store.jobs_to_resume(self.source):
            if job.status is JobStatus.QUEUED:
                log.info("job %s: resubmitting a request that never left", job.id)
                self._spawn(self._submit(job), self._submits)
            elif job.status is JobStatus.SUBMITTING:
                log.warning("job %s: submit was cut off by a restart; not resubmitting", job.id)
                self._spawn(self._end(job, JobStatus.UNKNOWN, MSG_INTERRUPTED), self._workers)
            elif job.status is JobStatus.COMPLETED:
                log.info("job %s: delivering a finished image after a restart", job.id)
                self._spawn(self._deliver(job), self._workers)
            else:
                self._spawn(self._tell_failure(job), self._workers)
