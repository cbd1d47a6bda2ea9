"""Shared test helpers: a sink that records what the runner tells it, and runner wiring."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bot.api import ImageApi
from bot.clock import Clock
from bot.delivery import ImageFile
from bot.jobs import DeliveryReceipt, JobRunner, RunnerConfig
from bot.models import Job, Stage
from bot.schedule import PollSchedule
from bot.store import Store

FAST_SCHEDULE = PollSchedule(min_interval=0.05, max_interval=0.5, first_poll=0.1)
FAST_RUNNER = RunnerConfig(
    time_limit=30.0,
    status_update_interval=0.0,
    submit_backoff=0.05,
    shutdown_grace=0.2,
    idle_wait=0.5,
)


@dataclass
class Outcome:
    job: Job
    images: list[ImageFile] | None = None
    reason: str | None = None


@dataclass
class RecordingSink:
    """A real sink (the JobSink protocol), as the terminal command's is, that keeps what it was told."""

    progress_log: list[tuple[int, Stage]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None:
        self.progress_log.append((job.id, stage))

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        self.outcomes.append(Outcome(job, images=images))
        self.changed.set()
        return DeliveryReceipt("test")

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        self.outcomes.append(Outcome(job, reason=reason))
        self.changed.set()
        return DeliveryReceipt("test")

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Outcome]:
        async with asyncio.timeout(timeout):
            while len(self.outcomes) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.outcomes


@contextlib.asynccontextmanager
async def running_runner(
    db_path: Path,
    base_url: str,
    sink: RecordingSink,
    *,
    api_key: str = "sandbox-key",
    config: RunnerConfig = FAST_RUNNER,
    schedule: PollSchedule = FAST_SCHEDULE,
    before_start: Callable[[Store], object] | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[JobRunner]:
    async with aiohttp.ClientSession() as session:
        store = await Store.open(db_path)
        api = ImageApi(session, base_url, api_key, "grok-imagine-image", timeout=5.0)
        runner = JobRunner(store, api, session, sink, config, schedule=schedule, source="test", clock=clock)
        try:
            await runner.start()
            yield runner
        finally:
            await runner.stop()
            await store.close()
