"""Time as the runner sees it: real by default, scaled or manual in benchmarks and tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch (what the database stores)."""
        ...

    def real_seconds(self, seconds: float) -> float:
        """How long to really wait for `seconds` of this clock."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def real_seconds(self, seconds: float) -> float:
        return seconds


class ScaledClock:
    """Runs `factor` times faster than real time, starting from now: a benchmark's 90 s job takes
    90/factor real seconds, and every interval the runner computes shrinks by the same factor."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._origin_real = time.monotonic()
        self._origin_epoch = time.time()

    def time(self) -> float:
        return self._origin_epoch + (time.monotonic() - self._origin_real) * self.factor

    def monotonic(self) -> float:
        return (time.monotonic() - self._origin_real) * self.factor

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.factor
