"""What every stage of the runner shares: its ports, tuning, clock, registry, durations and service watch,
and the two helpers each stage uses on a job: a store write retried while the database fails, and a
progress update."""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.core.clock import Clock
from bot.core.models import Job, Stage
from bot.core.runner.job_durations import JobDurations
from bot.core.runner.ports import ImageService, JobSink, JobStore, ResultFetcher
from bot.core.runner.registry import Registry
from bot.core.runner.retrying import doubling, retry
from bot.core.runner.runner_config import RunnerConfig
from bot.core.runner.service_watch import ServiceWatch
from bot.core.schedule import PollSchedule

log = logging.getLogger("bot.core.runner")
T = TypeVar("T")


@dataclass
class Parts:
    store: JobStore
    service: ImageService
    fetcher: ResultFetcher
    sink: JobSink
    config: RunnerConfig
    schedule: PollSchedule
    clock: Clock
    source: str
    registry: Registry
    durations: JobDurations
    watch: ServiceWatch
    wake: Callable[[], None]
    rng: random.Random
    closing: bool = False
    last_progress: dict[int, float] = field(default_factory=dict)
    # Jobs this process finished, by outcome (completed, failed, timed_out, undeliverable,
    # cancelled): read by /metrics. Counted where each job ends, once.
    finished: collections.Counter[str] = field(default_factory=collections.Counter)

    async def persist(
        self, job: Job, what: str, write: Callable[[], Awaitable[T]], *, attempts: int | None = None
    ) -> T | None:
        """Run one store write, retrying with backoff while the database fails (busy, full). Without
        `attempts` it retries until the write succeeds; with it, None means it never did."""

        def warn(attempt: int, error: Exception) -> None:
            if attempt == 1:
                log.warning("job %s: could not %s (%s); retrying", job.id, what, error)

        try:
            return await retry(
                write,
                retry_on=lambda error: isinstance(error, self.store.errors),
                attempts=attempts,
                delay=doubling(self.config.record_backoff, self.config.record_backoff_max),
                on_retry=warn,
            )
        except self.store.errors as error:
            log.error("job %s: could not %s after %s attempts (%s)", job.id, what, attempts, error)
            return None

    async def progress(self, job: Job, stage: Stage, *, force: bool = False) -> None:
        now = self.clock.time()
        last = self.last_progress.get(job.id)
        if not force and last is not None and now - last < self.config.status_update_interval:
            return
        self.last_progress[job.id] = now
        try:
            typical = self.durations.typical(job.kind)
            await self.sink.progress(job, stage, now - job.created_at, typical)
        except Exception:
            log.exception("job %s: progress update failed", job.id)

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of the clock."""
        await asyncio.sleep(self.clock.real_seconds(seconds))
