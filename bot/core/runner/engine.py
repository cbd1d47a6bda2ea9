"""The JobRunner: builds the stages around one set of shared parts, starts and stops them, resumes what
a previous process left and keeps this process's leases. Commands call its admission use cases.

No Discord here: the bot, the terminal command and the benchmark each plug in their own sink.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random

from bot.core.clock import Clock, SystemClock
from bot.core.log_context import job_context
from bot.core.models import Job, JobStatus
from bot.core.outage import OutagePolicy
from bot.core.runner.admission import Admission
from bot.core.runner.delivering import Deliverer
from bot.core.runner.job_durations import KINDS, JobDurations
from bot.core.runner.outcome_texts import MSG_INTERRUPTED
from bot.core.runner.polling import Poller
from bot.core.runner.ports import ImageService, JobSink, JobStore, ResultFetcher
from bot.core.runner.registry import Registry
from bot.core.runner.runner_config import RunnerConfig
from bot.core.runner.service_watch import ServiceWatch
from bot.core.runner.shared import Parts
from bot.core.runner.submitting import Submitter
from bot.core.schedule import PollSchedule

log = logging.getLogger("bot.core.runner")


class JobRunner(Admission):
    def __init__(
        self,
        store: JobStore,
        service: ImageService,
        fetcher: ResultFetcher,
        sink: JobSink,
        config: RunnerConfig | None = None,
        *,
        schedule: PollSchedule | None = None,
        source: str = "discord",
        clock: Clock | None = None,
    ) -> None:
        config = config or RunnerConfig()
        schedule = schedule or PollSchedule()
        clock = clock or SystemClock()
        rng = random.Random()
        # Probes at most half of POLL_MAX_INTERVAL apart: the backlog of images that finished during
        # the outage takes a few seconds to deliver, and each should arrive within POLL_MAX_INTERVAL
        # of the service's return.
        outage = OutagePolicy(config.outage_failures, schedule.max_interval / 2)
        self.parts = parts = Parts(
            store=store,
            service=service,
            fetcher=fetcher,
            sink=sink,
            config=config,
            schedule=schedule,
            clock=clock,
            source=source,
            registry=Registry(store.lease, self.wake),
            durations=JobDurations(clock, config.history_size, config.eta_window),
            watch=ServiceWatch(clock, outage, rng, self.wake),
            wake=self.wake,
            rng=rng,
        )
        self.deliverer = Deliverer(parts)
        self.poller = Poller(parts, self.deliverer)
        super().__init__(parts, Submitter(parts, self.deliverer))
        self.store, self.sink, self.config, self.source = store, sink, config, source
        self._loop_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None

    @property
    def loop_ran_at(self) -> float:
        """When the poll loop last went round (monotonic), read by /healthz."""
        return self.poller.loop_ran_at

    @loop_ran_at.setter
    def loop_ran_at(self, value: float) -> None:
        self.poller.loop_ran_at = value

    def wake(self) -> None:
        # Called from the parts before the poller exists (never in practice: only once running).
        poller = getattr(self, "poller", None)
        if poller is not None:
            poller.wake()

    @property
    def finished(self) -> collections.Counter[str]:
        """Jobs this process finished, by outcome: what /metrics exports as imagine_jobs_finished."""
        return self.parts.finished

    def typical_duration(self, kind: str) -> float | None:
        """The ETA of a job of this kind (`Job.kind`)."""
        return self.parts.durations.typical(kind)

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume what a previous process left, then start the poll loop."""
        for kind in KINDS:
            durations = await self.store.jobs.recent_durations(
                None if kind == "video" else kind == "edit",
                self.config.history_size,
                media="video" if kind == "video" else "image",
            )
            self.parts.durations.load(kind, durations)
        await self._resume()
        self._loop_task = asyncio.create_task(self.poller.run(), name="job-poll-loop")
        if not self.store.exclusive:
            # Other processes share the database: keep what this one holds, take what a dead one left.
            self._lease_task = asyncio.create_task(self._lease_loop(), name="job-lease-loop")

    async def stop(self) -> None:
        self.parts.closing = True
        registry = self.parts.registry
        registry.cancel_later()
        loops = [t for t in (self._loop_task, self._lease_task) if t is not None]
        for loop in loops:
            loop.cancel()
        # A submit cut off now would leave its outcome unknown, and a delivery cut off between the
        # upload and its row update would be repeated after a restart: give in-flight work a moment.
        in_flight = registry.in_flight()
        if in_flight:
            await asyncio.wait(in_flight, timeout=self.config.shutdown_grace)
        pending = [t for t in registry.in_flight() if not t.done()] + loops
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- restart -------------------------------------------------------------------------------------

    async def _resume(self) -> None:
        now = self.parts.clock.time()
        await self.store.jobs.reset_leases(self.source, now)
        for job in await self.store.jobs.to_resume(self.source, now=now, lease=self.parts.registry.lease):
            self._pick_up(job)

    def _pick_up(self, job: Job) -> None:
        """Carry on with a job another process (or an earlier run of this one) left half-way. Nothing
        is sent twice: only a request that certainly never left is submitted, and a finished image
        is looked for on Discord before it is posted. Each entry point guards its own errors (and binds
        the job's ids to its own task's log lines)."""
        with job_context(job):
            self._pick_up_now(job)

    def _pick_up_now(self, job: Job) -> None:
        registry, deliverer = self.parts.registry, self.deliverer
        if job.status is JobStatus.QUEUED:
            log.info("job %s: submitting a request that never left", job.id)
            self.submitter.start(job)
        elif job.status is JobStatus.SUBMITTING and job.task_id is not None:
            # The API answered with a task id before the restart: follow that task, never resend.
            log.info("job %s: resuming task %s that was sent before a restart", job.id, job.task_id)
            submitted = job.submitted_at if job.submitted_at is not None else job.created_at
            self.submitter.resume_sent(job, job.task_id, submitted)
        elif job.status is JobStatus.SUBMITTING:
            log.warning("job %s: submit was cut off by a restart; not resubmitting", job.id)
            registry.spawn_for(job.id, deliverer.end(job, JobStatus.UNKNOWN, MSG_INTERRUPTED))
        elif job.status is JobStatus.RUNNING:
            # A poll claim of a process that died: polled now, ahead of the due polls.
            self.poller.poll_now(job)
        elif job.status is JobStatus.COMPLETED:
            registry.spawn_for(job.id, deliverer.deliver_after_restart(job))
        else:
            registry.spawn_for(job.id, deliverer.tell_failure(job))

    # -- leases shared with other processes ----------------------------------------------------------

    async def _lease_loop(self) -> None:
        """Every quarter lease: renew the leases of what this process works on, then take over the
        work of processes that died. Two short statements per round, whatever the load."""
        period = self.parts.registry.lease / 4
        while not self.parts.closing:
            await self.parts.sleep(period)
            await self.renew_and_take_over()

    async def renew_and_take_over(self) -> int:
        """One round of `_lease_loop`; returns how many jobs were taken over. Each half is tried even
        if the other failed (the next round tries again; one line is enough)."""
        registry, clock = self.parts.registry, self.parts.clock
        held, polling = registry.held()
        try:
            await self.store.jobs.renew_leases(held, polling, clock.time(), registry.lease)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not renew job leases (%s); retrying", exc)
        try:
            return await self._take_over()
        except Exception as exc:  # noqa: BLE001
            log.warning("could not take over job leases (%s); retrying", exc)
            return 0

    async def _take_over(self) -> int:
        registry, clock = self.parts.registry, self.parts.clock
        taken = 0
        while not self.parts.closing:
            batch = await self.store.jobs.take_over(
                self.source, clock.time(), registry.lease, self.config.takeover_batch
            )
            for job in batch:
                if registry.holds(job.id):
                    continue  # this process's own, still in its hands (its renewal came late)
                log.info(
                    "job %s: taking it over (%s) from a process whose lease ran out", job.id, job.status.value
                )
                self._pick_up(job)
                taken += 1
            if len(batch) < self.config.takeover_batch:
                break
        return taken
