"""When to poll a running task next: learned from how long recent tasks of its kind took."""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_HISTORY = 5


@dataclass(frozen=True)
class PollSchedule:
    """Poll rarely where few tasks finish and densely where many do.

    With a history of durations, the next poll lands where a fixed share (`step_share`) of the
    tasks still running at this age would have finished, so each poll has about the same chance of
    finding the image ready. Without history, the interval grows with the task's age.
    """

    min_interval: float = 1.0
    max_interval: float = 15.0
    first_poll: float = 3.0
    step_share: float = 0.2
    growth: float = 0.25

    def _clamp(self, delay: float) -> float:
        return min(max(delay, self.min_interval), self.max_interval)

    def next_delay(self, age: float, history: Sequence[float]) -> float:
        """Seconds until the next poll of a task submitted `age` seconds ago."""
        durations = sorted(history)
        if len(durations) < MIN_HISTORY:
            return self._clamp(max(self.first_poll - age, self.growth * age))
        start = bisect.bisect_right(durations, age)
        remaining = durations[start:]
        if not remaining:
            # Older than anything seen lately: back off with age, the task may be stuck upstream.
            return self._clamp(self.growth * age)
        index = min(len(remaining) - 1, int(len(remaining) * self.step_share))
        return self._clamp(remaining[index] - age)


def typical_duration(history: Sequence[float]) -> float | None:
    """The median of recent durations, or None while there is too little data to say."""
    if len(history) < MIN_HISTORY:
        return None
    return statistics.median(history)
