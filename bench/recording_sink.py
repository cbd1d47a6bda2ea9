"""A JobSink that records when each outcome arrives, for the overhead and load scenarios."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bot.core.image_file import ImageFile
from bot.core.models import Job, Stage
from bot.core.runner import DeliveryReceipt


@dataclass(frozen=True)
class Arrival:
    job_id: int
    task_id: str | None
    prompt: str
    at: float
    """time.monotonic() when the runner handed the outcome over: the image has been downloaded."""
    delivered: bool
    poll_count: int
    finished_at: float | None
    """The runner's clock when its poll saw the task complete (job.finished_at)."""


@dataclass
class TimingSink:
    """Implements bot.jobs.JobSink. Records the arrival time first thing, before any bookkeeping."""

    arrivals: dict[int, Arrival] = field(default_factory=dict)
    submitted: int = 0
    """Jobs the API accepted (the runner always reports the SUBMITTED stage)."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None:
        if stage is Stage.SUBMITTED:
            self.submitted += 1
            self.changed.set()

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        now = time.monotonic()
        ok = bool(images) and all(image.data for image in images)
        self._record(Arrival(job.id, job.task_id, job.prompt, now, ok, job.poll_count, job.finished_at))
        return DeliveryReceipt("bench")

    async def find_delivery(self, job: Job) -> DeliveryReceipt | None:
        return None  # nothing to look up: an earlier process's output is not visible from here

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        now = time.monotonic()
        self._record(Arrival(job.id, job.task_id, job.prompt, now, False, job.poll_count, job.finished_at))
        return DeliveryReceipt("bench")

    def _record(self, arrival: Arrival) -> None:
        self.arrivals.setdefault(arrival.job_id, arrival)
        self.changed.set()

    async def wait_for(self, count: int, timeout: float) -> None:
        """Until `count` outcomes arrived; raises TimeoutError after `timeout` real seconds."""
        async with asyncio.timeout(timeout):
            while len(self.arrivals) < count:
                self.changed.clear()
                await self.changed.wait()

    async def wait_submitted(self, count: int, timeout: float) -> None:
        """Until `count` jobs were accepted by the API or ended without being accepted."""
        async with asyncio.timeout(timeout):
            while self.submitted + sum(1 for a in self.arrivals.values() if a.task_id is None) < count:
                self.changed.clear()
                await self.changed.wait()
