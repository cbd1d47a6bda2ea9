"""Whether the image service answers, as every stage of this process sees it: the outage guard's events.

Submits and polls report each answer or failure here; an outage pauses the polls (the poll loop then
probes once at a time) and makes new submits wait for the service's return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from bot.core.clock import Clock
from bot.core.outage import OutageGuard, OutagePolicy

log = logging.getLogger("bot.core.runner")


class ServiceWatch:
    def __init__(
        self, clock: Clock, policy: OutagePolicy, rng: random.Random, wake: Callable[[], None]
    ) -> None:
        self._clock = clock
        self.guard = OutageGuard(policy, rng)
        self._wake = wake
        self._up = asyncio.Event()
        self._up.set()
        # Set when an outage ends: the poll loop then makes every running job due at once.
        self.recovered = False

    @property
    def down(self) -> bool:
        return self.guard.down

    @property
    def suspect(self) -> bool:
        return self.guard.suspect

    def answered(self) -> None:
        """The image API answered a request: an outage, if there was one, is over."""
        if self.guard.answered(self._clock.time()):
            log.warning("image API answers again; polling every running job now")
            self.recovered = True
            self._up.set()
            self._wake()

    def failed(self) -> None:
        """A request to the image API met a transient error (5xx, time-out, broken connection)."""
        if self.guard.failed(self._clock.time()):
            log.warning(
                "image API: %s failed requests in a row; pausing polls and probing once at a time",
                self.guard.policy.failures,
            )
            self._up.clear()
            self._wake()

    async def wait_up(self, seconds: float) -> bool:
        """Wait up to `seconds` (of the clock) for the service to answer again; True if it does."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), self._clock.real_seconds(seconds))
        return self._up.is_set()

    def downtime(self, start: float, end: float) -> float:
        return self.guard.downtime(start, end)
