"""Event-loop lag: a timer that asks to wake every few milliseconds and records how late it woke.

Lateness is what every other coroutine on the loop suffers too: a slow callback, a blocking call or
too much work per turn of the loop all show up here."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


class LagProbe:
    def __init__(self, interval: float = 0.01, max_samples: int = 200_000) -> None:
        self.interval = interval
        self.max_samples = max_samples
        self.samples_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while len(self.samples_ms) < self.max_samples:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            late = time.perf_counter() - before - self.interval
            self.samples_ms.append(max(0.0, late) * 1000.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lag-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def mark(self) -> int:
        """The index of the next sample, to split a run into phases."""
        return len(self.samples_ms)


@contextlib.asynccontextmanager
async def probing(interval: float = 0.01) -> AsyncIterator[LagProbe]:
    probe = LagProbe(interval)
    probe.start()
    try:
        yield probe
    finally:
        await probe.stop()
