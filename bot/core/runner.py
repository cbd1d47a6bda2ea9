"""The job runner: persist, submit, follow every running task in one poll loop, hand outcomes to a sink.

No Discord here: the bot, the terminal command and the benchmark each plug in their own sink.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp

from bot.adapters.image_api import (
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
from bot.adapters.media import DownloadError, ImageFile, download_image, limit_pixels
from bot.adapters.store import Store, StoreError
from bot.core import messages
from bot.core.clock import Clock, SystemClock
from bot.core.delivery_pool import MSG_FAILED, DeliveryPool
from bot.core.i18n import N_
from bot.core.log_context import bind_job
from bot.core.models import ImageRequest, Job, JobStatus, Origin, Stage
from bot.core.outage import OutageGuard, OutagePolicy, backoff_delay, retry_after_delay
from bot.core.policy.quotas import DEFAULT_MAX_RUNNING, Decision, Member
from bot.core.policy.rulebook import RuleBook
from bot.core.schedule import Cohort, PollSchedule, typical_duration

log = logging.getLogger(__name__)
T = TypeVar("T")

# The delivery state of a job whose outcome could not be told (every way the sink knows failed).
UNDELIVERABLE = "undeliverable"

# What the requester reads when a job ends without an image. Never a raw payload or a traceback.
# The job row keeps the English text (`error`, read by operators too); the sink shows it in the
# reader's language (`bot.i18n.translate_text` finds the catalog text, or the template it was made from).
MSG_UNAVAILABLE = N_("The image service is unavailable right now. The bot's operator has been told.")
MSG_UNREACHABLE = N_(
    "The image service could not be reached, so nothing was started. Please try again shortly."
)
MSG_BUSY = N_(
    "The image service is too busy right now, so nothing was started. Please try again in a minute."
)
MSG_UNKNOWN = N_(
    "The image service did not confirm that it received this request, so the bot cannot follow it. "
    "It was not retried, so that you are not charged twice. Please try again."
)
MSG_INTERRUPTED = N_(
    "The bot restarted while sending this request, and cannot tell whether the image service received "
    "it. It was not sent again, so that you are not charged twice. Please try again."
)
MSG_NO_IMAGE = N_("The image service finished but returned no image.")
MSG_LOST = N_("The image service no longer knows this request.")
MSG_OUTAGE = N_(
    "The image service has not been answering for a while, so this request was not sent. "
    "It does not count against your quota. Please try again later."
)
# How long (real seconds) an admitted job is held for its acknowledgement before `launch`: Discord
# allows 3 seconds for it, a slow follow-up a little more.
ACKNOWLEDGE_HOLD = 60.0
# A probe during an outage asks about a task that does not exist: any answer but a 5xx, a time-out or
# a broken connection shows that the service is back.
PROBE_TASK_ID = "imagine-bot-outage-probe"


@dataclass(frozen=True)
class DeliveryReceipt:
    """How the outcome reached the requester (`channel`, `interaction`, `dm`, `file`, ...)."""

    delivery: str
    message_id: int | None = None
    channel_id: int | None = None


@dataclass(frozen=True)
class Cancelled:
    """A cancellation that took effect: whether the use was given back, and what the requester reads."""

    refunded: bool
    text: str


class JobSink(Protocol):
    """Where outcomes go. A sink may also have `show_cancelled(job, text)` and
    `modlog(guild_id, text, *, throttle)` (the Discord sink does): the runner calls them when present,
    so cancellations and mod-log entries flow command → runner → sink like everything else."""

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None: ...

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt: ...

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt: ...

    async def find_delivery(self, job: Job) -> DeliveryReceipt | None:
        """The job's image post, if an earlier process already made it (None: not found, or the sink
        cannot tell). Asked after a restart before posting a finished job again."""
        ...


@dataclass(frozen=True)
class RunnerConfig:
    time_limit: float = 600.0
    concurrency: int = 16
    max_result_bytes: int = 50 * 1024 * 1024
    status_update_interval: float = 3.0
    submit_attempts: int = 3
    submit_backoff: float = 2.0
    idle_wait: float = 30.0
    # How long a poll claim, and the hold on a job this process works on, last (JOB_LEASE_SECONDS).
    # Every quarter of it the runner renews what it holds and takes over work whose lease ran out.
    lease: float = 60.0
    takeover_batch: int = 100  # jobs taken over at once; a full batch is followed by another at once
    shutdown_grace: float = 5.0
    download_attempts: int = 3
    download_timeout: float = 60.0  # one attempt at one image
    delivery_concurrency: int = 8  # deliveries (downloads and upload) at once, apart from the polls
    delivery_deadline: float = 120.0  # all of one job's downloads together
    max_result_pixels: int = 16_000_000
    # Database writes after a submit are retried while the database is busy or full: the task id until
    # it is recorded, a delivery `record_attempts` times (real seconds, doubling up to the maximum).
    record_backoff: float = 0.05
    record_backoff_max: float = 5.0
    record_attempts: int = 8
    tell_attempts: int = 3
    tell_backoff: float = 2.0  # seconds before the second sink attempt; doubled for the third
    tell_timeout: float = 120.0  # one sink call; a hung one counts as failed
    # When telling the requester failed every way, try again after these many seconds (the bot sets
    # some; the terminal and the benchmark give up at once), then mark the job undeliverable.
    redeliver_delays: tuple[float, ...] = ()
    history_size: int = 400  # what the poll schedule learns from (bench.mixes: 200 was noisier)
    eta_window: int = 50  # the ETA members see: the median of the latest jobs of the kind
    outage_failures: int = 3  # failed requests in a row, across jobs, that make an outage
    outage_queue_limit: float = 300.0  # how long a new request waits for the service to come back


def _refused_poll_reason(reason: str) -> str:
    return N_(
        "The image service refused to report on this request ({reason}), so the bot stopped following it."
    ).format(reason=reason)


def _end_reason(status: TaskStatus) -> str:
    why = status.error_message
    if status.status == "cancelled":
        if why:
            return N_("The image service cancelled this request: {why}.").format(why=why)
        return N_("The image service cancelled this request.")
    if status.status == "timeout":
        if why:
            return N_("The image service timed out on this request: {why}.").format(why=why)
        return N_("The image service timed out on this request.")
    if why:
        return N_("The image service could not make this image: {why}").format(why=why)
    return N_("The image service could not make this image.")


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
        # What this process works on, so its leases are renewed while it does: jobs being submitted,
        # delivered or told (a count per job: one job may be in two of these at once), jobs whose
        # poll is in flight, and admitted jobs waiting for their acknowledgement (until a deadline).
        self._held: collections.Counter[int] = collections.Counter()
        self._polls_out: collections.Counter[int] = collections.Counter()
        self._acknowledging: dict[int, float] = {}
        self._lease_task: asyncio.Task[None] | None = None
        self._delivering: set[int] = set()
        self.deliveries = DeliveryPool(self.config.delivery_concurrency, self.config.delivery_deadline)
        self._last_progress: dict[int, float] = {}
        self._history: dict[bool, list[float]] = {}
        # What the poll schedule plans from: per kind, the latest submitted jobs (finished or still
        # running), and its sample of durations, refreshed at most once a second of the clock.
        self._cohorts: dict[bool, Cohort] = {}
        self._planning: dict[bool, tuple[float, list[float]]] = {}
        self._closing = False
        self._retries: set[asyncio.Task[Any]] = set()
        self.rules = RuleBook(store.settings)
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
        history_text = await self.store.jobs.recent_durations(False, self.config.history_size)
        history_refs = await self.store.jobs.recent_durations(True, self.config.history_size)
        self._history = {False: history_text, True: history_refs}
        size = self.config.history_size
        self._cohorts = {False: Cohort(size, history_text), True: Cohort(size, history_refs)}
        await self._resume()
        self._loop_task = asyncio.create_task(self._poll_loop(), name="job-poll-loop")
        if not self.store.exclusive:
            # Other processes share the database: keep what this one holds, take what a dead one left.
            self._lease_task = asyncio.create_task(self._lease_loop(), name="job-lease-loop")

    async def stop(self) -> None:
        self._closing = True
        for retry in self._retries:  # later delivery attempts; the next start resumes those jobs
            retry.cancel()
        if self._loop_task is not None:
            self._loop_task.cancel()
        if self._lease_task is not None:
            self._lease_task.cancel()
        # A submit cut off now would leave its outcome unknown, and a delivery cut off between the
        # upload and its row update would be repeated after a restart: give in-flight work a moment.
        in_flight = self._submits | self._workers
        if in_flight:
            await asyncio.wait(in_flight, timeout=self.config.shutdown_grace)
        pending = [t for t in (*self._submits, *self._workers) if not t.done()]
        if self._loop_task is not None:
            pending.append(self._loop_task)
        if self._lease_task is not None:
            pending.append(self._lease_task)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any], group: set[asyncio.Task[Any]]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        group.add(task)
        task.add_done_callback(group.discard)
        task.add_done_callback(_reap)
        return task

    def _spawn_held(
        self,
        job_id: int,
        coro: Coroutine[Any, Any, Any],
        group: set[asyncio.Task[Any]],
        held: collections.Counter[int] | None = None,
    ) -> asyncio.Task[Any]:
        """Like `_spawn`, for work on one job: while the task runs, the job's lease is renewed."""
        counter = self._held if held is None else held
        counter[job_id] += 1
        task = self._spawn(coro, group)

        def release(_: asyncio.Task[Any]) -> None:
            counter[job_id] -= 1
            if counter[job_id] <= 0:
                del counter[job_id]

        task.add_done_callback(release)
        return task

    # -- intake ----------------------------------------------------------------------------------

    async def enqueue(self, request: ImageRequest, origin: Origin) -> Job:
        """Write the job, then submit it in the background. The row exists before any HTTP call."""
        job = await self.store.jobs.create(request, origin, self.clock.time())
        if self._closing:
            # Shutting down: the row stays QUEUED and the next start submits it.
            log.info("job %s queued during shutdown; it will be submitted after the restart", job.id)
            return job
        log.info("job %s queued (guild %s, user %s)", job.id, job.guild_id, job.user_id)
        self._spawn_held(job.id, self._submit(job), self._submits)
        return job

    async def admit(
        self, request: ImageRequest, origin: Origin, member: Member, default_quota: int
    ) -> tuple[Decision, Job | None]:
        """Check the prompt rules (off the database thread, outside any transaction), then bans and
        quotas and reserve a use, in one transaction. An admitted job is written QUEUED but not sent:
        `launch` sends it once the requester has been acknowledged."""
        rule_match = await self.rules.check(member.guild_id or None, request.full_prompt)
        decision, job = await self.store.usage.admit(
            member, request, origin, self.clock.time(), default_quota, rule_match=rule_match
        )
        if job is not None:
            # Held while the requester is acknowledged; `launch` or `abandon` follows. The deadline
            # keeps a job nobody launched from being held for ever: its lease then runs out.
            self._acknowledging[job.id] = time.monotonic() + ACKNOWLEDGE_HOLD
        return decision, job

    async def admit_personal(
        self, request: ImageRequest, origin: Origin, limit: int
    ) -> tuple[Decision, Job | None]:
        """Personal use (no server): the operator's ban, the personal daily quota and concurrency,
        checked and reserved in one transaction. No server's prompt rules apply."""
        assert origin.user_id is not None
        decision, job = await self.store.personal.admit(
            origin.user_id, request, origin, self.clock.time(), limit, DEFAULT_MAX_RUNNING
        )
        if job is not None:
            self._acknowledging[job.id] = time.monotonic() + ACKNOWLEDGE_HOLD
        return decision, job

    async def use_followup(self, job: Job) -> bool:
        """Count one interaction follow-up for the job before the sink sends it; False when Discord's
        limit for the interaction is reached (the sink then edits the original or sends a DM)."""
        if not await self.store.jobs.use_followup(job.id):
            return False
        job.followups_used += 1
        return True

    async def launch(self, job: Job, message_id: int | None, *, followups: int = 0) -> None:
        try:
            if followups:
                # The acknowledgement used follow-ups of the interaction already (a slow admission).
                await self.store.jobs.set_followups(job.id, followups)
                job.followups_used = followups
            if message_id is not None:
                await self.store.jobs.set_message_id(job.id, message_id)
                job.message_id = message_id
            if self._closing:
                log.info("job %s admitted during shutdown; it will be submitted after the restart", job.id)
                return
            self._spawn_held(job.id, self._submit(job), self._submits)
        finally:
            self._acknowledging.pop(job.id, None)

    async def abandon(self, job: Job, reason: str) -> None:
        """An admitted job that could not be acknowledged: refunded, and nobody left to tell."""
        try:
            await self._persist(
                job, "abandon it", lambda: self.store.jobs.abandon(job.id, reason, self.clock.time())
            )
        finally:
            self._acknowledging.pop(job.id, None)

    async def cancel(
        self, job: Job, by_user: int, *, refund: bool | None = None, announce: bool = False
    ) -> Cancelled | None:
        """Stop following a job. The API has no cancel route, so the task may still run (and be
        billed) upstream; the job just ends here. None if it had already finished or ended.

        Without `refund`, the runner decides: nothing was sent yet, or a moderator stopped it, costs
        nothing; otherwise the provider may still bill the task, so it counts unless the guild refunds
        cancellations. With `announce`, the sink shows the cancellation on the job's status message
        (a cancel from elsewhere, e.g. /queue); otherwise the caller shows `Cancelled.text` itself."""
        by_moderator = by_user != job.user_id
        if refund is None:
            policy = await self.store.settings.guild_policy(job.guild_id) if job.guild_id else None
            refund = (
                job.status is JobStatus.QUEUED or by_moderator or bool(policy and policy.refund_cancelled)
            )
        reason = N_("Cancelled by a moderator.") if by_moderator else N_("Cancelled by the requester.")
        now = self.clock.time()
        if not await self.store.jobs.mark_ended(job.id, JobStatus.CANCELLED, reason, now, refund=refund):
            return None
        await self.store.jobs.mark_cancelled_by(job.id, by_user)
        self._cohort(job).dropped(job.id)
        job.status, job.error, job.cancelled_by = JobStatus.CANCELLED, reason, by_user
        self._last_progress.pop(job.id, None)
        log.info("job %s cancelled by %s (refund %s)", job.id, by_user, refund)
        # Shown on the status message, a public message in the server: in the server's language.
        text = messages.cancelled_text(
            job, by_user, now - job.created_at, refunded=refund, locale=job.guild_locale
        )
        # The requester is told (by the caller, or below): nothing is left to deliver.
        await self.store.jobs.mark_delivered(job.id, delivery="cancelled", result_message_id=None, now=now)
        show = getattr(self.sink, "show_cancelled", None)  # the terminal and benchmark sinks have none
        if announce and show is not None:
            # In the background: the caller still has to answer its interaction within 3 seconds.
            self._spawn(show(job, text), self._workers)
        return Cancelled(refunded=refund, text=text)

    async def record_deleted(self, job_id: int) -> None:
        """The job's image message was deleted on Discord; the job and its usage rows stay."""
        await self.store.jobs.mark_result_deleted(job_id, self.clock.time())

    async def log_refusal(
        self,
        origin: Origin,
        *,
        prompt: str,
        aspect_ratio: str | None,
        ref_count: int,
        reason: str,
        detail: str | None,
    ) -> None:
        """A request refused before admission (bad input): in the usage log (never counted) and the
        mod-log. A busy database only costs the usage row; the requester was answered already."""
        if (origin.guild_id is not None or origin.is_personal) and origin.user_id is not None:
            try:
                await self.store.usage.log_refusal(
                    guild_id=origin.guild_id,
                    context=origin.context,
                    channel_id=origin.channel_id,
                    user_id=origin.user_id,
                    prompt=prompt,
                    aspect_ratio=aspect_ratio,
                    ref_count=ref_count,
                    reason=reason,
                    detail=detail,
                    now=self.clock.time(),
                )
            except StoreError as exc:
                log.warning("could not log a refusal: %s", exc)
        await self.report_refusal(origin, reason=reason, prompt=prompt, detail=None)

    async def report_refusal(self, origin: Origin, *, reason: str, prompt: str, detail: str | None) -> None:
        """A refusal for the guild's mod-log (admission wrote its usage row already). The sink keeps a
        member hammering the command from flooding the channel."""
        modlog = getattr(self.sink, "modlog", None)  # only the Discord sink has a mod-log
        if modlog is None or origin.guild_id is None or origin.user_id is None:
            return
        entry = messages.modlog_refusal(
            origin.user_id, origin.channel_id, reason, prompt, detail, locale=origin.guild_locale
        )
        await modlog(origin.guild_id, entry, throttle=(origin.user_id, reason))

    def typical_duration(self, has_refs: bool) -> float | None:
        return typical_duration(self._history.get(has_refs, [])[: self.config.eta_window])

    async def _submit(self, job: Job) -> None:
        bind_job(job)  # log lines of this task carry the job's ids
        await self._progress(job, Stage.QUEUED, force=True)
        # A request made while the service is down waits for it (still QUEUED, so a restart may
        # send it safely), up to outage_queue_limit from now.
        deadline = self.clock.time() + self.config.outage_queue_limit
        if self._outage.down and not await self._wait_for_service(job, deadline):
            return
        if not await self._persist(
            job, "mark it as being sent", lambda: self.store.jobs.mark_submitting(job.id)
        ):
            log.info("job %s was cancelled before it was sent", job.id)
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                task_id = await self.api.submit(job.full_prompt, job.aspect_ratio, job.reference_urls)
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
                    if not await self.store.jobs.mark_requeued(job.id):
                        return
                    if not await self._wait_for_service(job, deadline):
                        return
                    if not await self.store.jobs.mark_submitting(job.id):
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
                    job,
                    JobStatus.FAILED,
                    N_("The image service refused this request: {reason}").format(reason=exc.reason),
                )
                return
            self._answered()
            break
        await self._record_submitted(job, task_id, self.clock.time())

    async def _record_submitted(self, job: Job, task_id: str, submitted_at: float) -> None:
        """The API took the request: record its task id, retrying for as long as the database refuses
        (busy, full). Until then the job lives only in this coroutine, which keeps it: the member's slot
        stays taken, and the task is followed as soon as the row says RUNNING."""
        job.task_id = task_id

        async def write() -> bool:
            now = self.clock.time()
            delay = self.schedule.next_delay(now - submitted_at, self._planning_history(job.has_references))
            return await self.store.jobs.mark_running(job.id, task_id, submitted_at, now + delay)

        try:
            recorded = await self._persist(job, f"record its task id {task_id}", write)
        except asyncio.CancelledError:
            # Shutting down before the database took it: the row says SUBMITTING without a task id, so
            # the next start tells the member the outcome is unknown. Say which task it was.
            log.error("job %s: shut down before task %s could be recorded", job.id, task_id)
            raise
        if not recorded:
            log.info("job %s was cancelled while its submit was in flight (task %s)", job.id, task_id)
            return
        job.status, job.submitted_at = JobStatus.RUNNING, submitted_at
        self._cohort(job).started(job.id, submitted_at)
        self.wake()
        await self._progress(job, Stage.SUBMITTED, force=True)

    async def _persist(
        self, job: Job, what: str, write: Callable[[], Awaitable[T]], *, attempts: int | None = None
    ) -> T | None:
        """Run one store write, retrying with backoff while the database fails (busy, full). Without
        `attempts` it retries until the write succeeds; with it, None means it never did."""
        backoff = self.config.record_backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await write()
            except StoreError as exc:
                if attempts is not None and attempt >= attempts:
                    log.error("job %s: could not %s after %s attempts (%s)", job.id, what, attempt, exc)
                    return None
                if attempt == 1:
                    log.warning("job %s: could not %s (%s); retrying", job.id, what, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.record_backoff_max)
            else:
                if attempt > 1:
                    log.info("job %s: could %s after %s attempts", job.id, what, attempt)
                return result

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
        if not await self.store.jobs.mark_requeued(job.id):
            return False
        await asyncio.sleep(self.clock.real_seconds(seconds))
        return await self.store.jobs.mark_submitting(job.id)

    # -- the poll loop -----------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while not self._closing:
            self.loop_ran_at = time.monotonic()  # read by /healthz
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
                await self.store.jobs.reset_leases(self.source, now)
            if free > 0:
                for job in await self.store.jobs.claim_due(self.source, now, free, self.config.lease):
                    self._polling += 1
                    self._spawn_held(job.id, self._poll_one(job), self._workers, self._polls_out)
            next_at = await self.store.jobs.next_poll_time(self.source)
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
        bind_job(job)
        assert job.task_id is not None and job.submitted_at is not None
        now = self.clock.time()
        age = now - job.submitted_at
        # Time the service was down does not count: an outage shorter than the limit times out nothing.
        if age > self.config.time_limit + self._outage.downtime(job.submitted_at, now):
            minutes = self.config.time_limit / 60
            await self._end(
                job,
                JobStatus.TIMED_OUT,
                N_("The image took longer than {minutes} minutes, so the bot stopped waiting for it.").format(
                    minutes=f"{minutes:g}"
                ),
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
            still_running = await self.store.jobs.record_poll(
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
        if not await self.store.jobs.mark_completed(job.id, refs, now, status.trace_id):
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
        if not await self.store.jobs.record_poll(
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
        """Hand the job to the delivery pool and return: the poll slot is free again at once."""
        bind_job(job)
        if job.id in self._delivering:
            return
        self._delivering.add(job.id)
        self._spawn_held(job.id, self.deliveries.run(lambda: self._deliver_now(job)), self._workers)

    async def _deliver_now(self, job: Job) -> None:
        try:
            images = await self.deliveries.fetch_all(
                job.id, job.result_urls, lambda ref: self._download(job, ref)
            )
            elapsed = (job.finished_at or self.clock.time()) - job.created_at
            receipt = await self._tell(job, lambda: self.sink.deliver(job, images, elapsed))
            await self._record_delivery(job, receipt)
        finally:
            self._delivering.discard(job.id)
            self._last_progress.pop(job.id, None)

    async def _download(self, job: Job, ref: str) -> ImageFile:
        """One image, with retries for what may pass; its pixels checked before anything decodes it.
        What the member may read is in `ImageFile.error`; the details (host, status) only in the log."""
        last_error = MSG_FAILED
        url = None if ref.startswith("data:") else ref
        for attempt in range(1, self.config.download_attempts + 1):
            try:
                image = await download_image(
                    self.session,
                    ref,
                    max_bytes=self.config.max_result_bytes,
                    timeout=self.config.download_timeout,
                )
            except DownloadError as exc:
                last_error = str(exc)
                log.warning("job %s: download attempt %s failed: %s", job.id, attempt, exc.detail)
                if exc.blocked:
                    # A link the bot refuses to fetch is never shown to the member either.
                    return ImageFile(url=None, data=None, error=last_error)
                if exc.permanent:
                    break
                if attempt < self.config.download_attempts:
                    await asyncio.sleep(self.clock.real_seconds(attempt))
            else:
                return await asyncio.to_thread(limit_pixels, image, self.config.max_result_pixels)
        return ImageFile(url=url, data=None, error=last_error)

    async def _end(self, job: Job, status: JobStatus, reason: str, *, trace_id: str | None = None) -> None:
        self._cohort(job).dropped(job.id)
        ended = lambda: self.store.jobs.mark_ended(job.id, status, reason, self.clock.time())  # noqa: E731
        if not await self._persist(job, "record its end", ended):
            return  # it had already ended (e.g. cancelled): whoever ended it told the requester
        job.status, job.error = status, reason
        log.info("job %s ended %s: %s", job.id, status.value, reason)
        await self._tell_failure(job)

    async def _tell_failure(self, job: Job) -> None:
        reason = job.error or N_("The image could not be made.")
        receipt = await self._tell(job, lambda: self.sink.fail(job, reason))
        await self._record_delivery(job, DeliveryReceipt(receipt.delivery, None, receipt.channel_id))
        self._last_progress.pop(job.id, None)

    async def _record_delivery(self, job: Job, receipt: DeliveryReceipt) -> None:
        """Record how the outcome reached the requester, retrying while the database fails. If it never
        takes it, the job stays as it was and the next start looks for the post before posting again."""
        if receipt.delivery == UNDELIVERABLE:
            await self._undeliverable(job)
            return

        async def write() -> bool:
            await self.store.jobs.mark_delivered(
                job.id,
                delivery=receipt.delivery,
                result_message_id=receipt.message_id,
                result_channel_id=receipt.channel_id,
                now=self.clock.time(),
            )
            return True

        if await self._persist(job, "record its delivery", write, attempts=self.config.record_attempts):
            job.delivered_at = self.clock.time()
            log.info("job %s delivered via %s", job.id, receipt.delivery)

    async def _undeliverable(self, job: Job) -> None:
        """Every way of telling the requester failed: try again later (a bounded number of times),
        then give up. One log line each time, never a traceback."""
        later = self.config.redeliver_delays
        failures = await self._persist(
            job,
            "record that it could not be delivered",
            lambda: self.store.jobs.mark_undeliverable(job.id, retries=len(later), now=self.clock.time()),
            attempts=self.config.record_attempts,
        )
        if failures is None:
            return
        if failures > len(later):
            log.warning(
                "job %s: its outcome could not be delivered; gave up after %s tries", job.id, failures
            )
            return
        delay = later[failures - 1]
        log.warning("job %s: its outcome could not be delivered; trying again in %g s", job.id, delay)
        self._spawn_held(job.id, self._tell_later(job, delay), self._retries)

    async def _tell_later(self, job: Job, delay: float) -> None:
        await asyncio.sleep(self.clock.real_seconds(delay))
        if job.status is JobStatus.COMPLETED:
            await self._deliver(job)
        else:
            await self._tell_failure(job)

    async def _tell(self, job: Job, send: Callable[[], Awaitable[DeliveryReceipt]]) -> DeliveryReceipt:
        """Run a sink call, retrying a few times: a sink that keeps failing (or hangs) must not wedge the
        job. The failures are logged in one line at the end; tracebacks only at DEBUG."""
        attempts = self.config.tell_attempts
        error = "unknown error"
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(self.config.tell_timeout):
                    return await send()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.debug("job %s: telling the requester failed (attempt %s)", job.id, attempt, exc_info=True)
                if attempt < attempts:
                    await asyncio.sleep(self.clock.real_seconds(self.config.tell_backoff * attempt))
        log.warning("job %s: telling the requester failed %s times (%s)", job.id, attempts, error[:300])
        return DeliveryReceipt(UNDELIVERABLE)

    # -- restart -----------------------------------------------------------------------------------

    async def _resume(self) -> None:
        now = self.clock.time()
        await self.store.jobs.reset_leases(self.source, now)
        for job in await self.store.jobs.to_resume(self.source, now=now, lease=self.config.lease):
            self._pick_up(job)

    def _pick_up(self, job: Job) -> None:
        """Carry on with a job another process (or an earlier run of this one) left half-way. Nothing
        is sent twice: only a request that certainly never left is submitted, and a finished image
        is looked for on Discord before it is posted."""
        if job.status is JobStatus.QUEUED:
            log.info("job %s: submitting a request that never left", job.id)
            self._spawn_held(job.id, self._submit(job), self._submits)
        elif job.status is JobStatus.SUBMITTING and job.task_id is not None:
            # The API answered with a task id before the restart: follow that task, never resend.
            log.info("job %s: resuming task %s that was sent before a restart", job.id, job.task_id)
            submitted = job.submitted_at if job.submitted_at is not None else job.created_at
            self._spawn_held(job.id, self._record_submitted(job, job.task_id, submitted), self._submits)
        elif job.status is JobStatus.SUBMITTING:
            log.warning("job %s: submit was cut off by a restart; not resubmitting", job.id)
            self._spawn_held(job.id, self._end(job, JobStatus.UNKNOWN, MSG_INTERRUPTED), self._workers)
        elif job.status is JobStatus.COMPLETED:
            self._spawn_held(job.id, self._deliver_after_restart(job), self._workers)
        else:
            self._spawn_held(job.id, self._tell_failure(job), self._workers)

    # -- leases shared with other processes --------------------------------------------------------

    async def _lease_loop(self) -> None:
        """Every quarter lease: renew the leases of what this process works on, then take over the
        work of processes that died. Two short statements per round, whatever the load."""
        period = self.config.lease / 4
        while not self._closing:
            await asyncio.sleep(self.clock.real_seconds(period))
            try:
                await self.renew_and_take_over()
            except Exception as exc:  # noqa: BLE001 - the next round tries again; one line is enough
                log.warning("could not renew or take over job leases (%s); retrying", exc)

    async def renew_and_take_over(self) -> int:
        """One round of `_lease_loop`; returns how many jobs were taken over."""
        now = self.clock.time()
        deadline = time.monotonic()
        for job_id, until in list(self._acknowledging.items()):
            if until < deadline:
                del self._acknowledging[job_id]
        # A poll may end its job and tell the requester before it returns: that work is held too.
        held = sorted({*self._held, *self._acknowledging, *self._polls_out})
        await self.store.jobs.renew_leases(held, sorted(self._polls_out), now, self.config.lease)
        taken = 0
        while not self._closing:
            batch = await self.store.jobs.take_over(
                self.source, self.clock.time(), self.config.lease, self.config.takeover_batch
            )
            for job in batch:
                if job.id in self._held or job.id in self._acknowledging:
                    continue  # this process's own, still in its hands (its renewal came late)
                log.info(
                    "job %s: taking it over (%s) from a process whose lease ran out", job.id, job.status.value
                )
                self._pick_up(job)
                taken += 1
            if len(batch) < self.config.takeover_batch:
                break
        return taken

    async def _deliver_after_restart(self, job: Job) -> None:
        """A finished job the last process may have posted already (it died, or the database refused
        the record): look for that post first, and record it instead of posting a second copy."""
        try:
            found = await self.sink.find_delivery(job)
        except Exception as exc:  # noqa: BLE001 - one line; posting again is the safe fallback
            log.warning("job %s: could not look for an earlier post (%s); delivering", job.id, exc)
            found = None
        if found is not None:
            log.info(
                "job %s: its image was already posted (message %s); recording it", job.id, found.message_id
            )
            await self._record_delivery(job, found)
            return
        log.info("job %s: delivering a finished image after a restart", job.id)
        await self._deliver(job)


def _reap(task: asyncio.Task[Any]) -> None:
    """Every background task's end is looked at: none may die with an exception nobody retrieves."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("background task %s failed: %s", task.get_name(), error, exc_info=error)
