"""When to poll a running task next: learned from how long recent tasks of its kind took.

Polling is the only way to learn that a task finished, so every schedule trades polls (load on the
image API) against overhead (how long a finished image waits for the poll that finds it). A poll
`gap` seconds after the previous one leaves a job that finished in between waiting up to `gap`
seconds, whatever its duration; so to keep the overhead of most jobs small at the least number of
polls, poll at one steady gap over the range where jobs finish, and not before that range starts.

With a history of durations the schedule therefore:

- puts the first poll where as many recent jobs had finished as finish in the gap after it, so the
  first poll catches about what each later one does (and no job waits much more than a gap for it),
- then polls every `gap` seconds, the smallest gap whose expected number of polls per job, over the
  recent durations, stays within `poll_budget`,
- and, once a task is older than every recent one, keeps that gap for a while and then backs off.

Recorded durations are detection times (the age at the poll that saw the task complete), later than
the true ones by about half a gap; the fit subtracts that half gap. Left in, it would make each fit
start polling later than the last, and the first poll would drift ever later.
Every delay is kept within [min_interval, max_interval]; with min == max the schedule is a fixed poller.
"""

from __future__ import annotations

import bisect
import functools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_HISTORY = 5
_BISECT_STEPS = 30  # the gap to within (max - min) / 2**30 seconds


@dataclass(frozen=True)
class PollPlan:
    """A schedule fitted to one history: first poll, steady gap, and the longest recent duration."""

    first_poll: float
    gap: float
    longest: float


@dataclass(frozen=True)
class PollSchedule:
    min_interval: float = 1.0
    max_interval: float = 15.0
    first_poll: float = 3.0
    """Seconds to the first poll while there is too little history to learn from."""
    poll_budget: float = 7.5
    """Polls per job to aim for; fewer polls mean a larger gap, so more overhead. The gap is fitted to a
    sample of 50 durations and judged on the next jobs, so a run lands within a few percent of the
    budget either way: stay a little under a hard limit. `python -m bench.simulate` shows the trade."""
    growth: float = 0.25
    """Backoff without history (the delay is this share of the age), and past the longest recent
    duration (this share of the time beyond it)."""

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("poll intervals need 0 < min_interval <= max_interval")
        if self.poll_budget < 1:
            raise ValueError("poll_budget must be at least 1 poll per job")

    def _clamp(self, delay: float) -> float:
        return min(max(delay, self.min_interval), self.max_interval)

    def next_delay(self, age: float, history: Sequence[float]) -> float:
        """Seconds until the next poll of a task submitted `age` seconds ago."""
        if len(history) < MIN_HISTORY:
            return self._clamp(max(self.first_poll - age, self.growth * age))
        plan = self.plan(history)
        if age <= plan.longest:
            # Never less than the gap, even just before the first poll: the plan moves a little with
            # every finished job, and a poll that comes a moment early must not cost a second one.
            return self._clamp(max(plan.first_poll - age, plan.gap))
        # Older than anything seen lately: keep the gap for a while, then back off with age.
        return self._clamp(max(plan.gap, self.growth * (age - plan.longest)))

    def plan(self, history: Sequence[float]) -> PollPlan:
        """The schedule fitted to `history` (at least MIN_HISTORY durations); cached per history, since
        the runner asks after every poll and the history only changes when a job finishes."""
        return _fit(tuple(history), self.min_interval, self.max_interval, self.poll_budget)


def _first_poll(durations: list[float], gap: float) -> float:
    """The lowest of the (sorted) durations by which at least as many jobs had finished as finish
    within the gap after it. Too late a first poll catches more than the next one and moves earlier;
    too early a one catches less and moves later: it settles near one gap's worth of jobs."""
    for index, duration in enumerate(durations):
        done = bisect.bisect_right(durations, duration, lo=index)
        if done >= bisect.bisect_right(durations, duration + gap, lo=done) - done:
            return duration
    return durations[-1]


@functools.lru_cache(maxsize=256)
def _fit(history: tuple[float, ...], min_gap: float, max_gap: float, budget: float) -> PollPlan:
    ordered = sorted(history)

    def estimate(gap: float) -> tuple[list[float], float]:
        # Detection times are about half a gap later than the true finishing times.
        durations = [d - gap / 2 for d in ordered]
        return durations, max(min_gap, _first_poll(durations, gap))

    def expected_polls(gap: float) -> float:
        durations, first = estimate(gap)
        # A job finishing at d > first is found on average half a gap after it, so the poll count
        # is 1 + (d - first) / gap + 1/2: a smooth curve, not the steps of the exact count, so the
        # fit does not chase the particular sample.
        return statistics.fmean(1.0 if d <= first else 1.5 + (d - first) / gap for d in durations)

    if expected_polls(min_gap) <= budget:
        gap = min_gap
    elif expected_polls(max_gap) > budget:
        gap = max_gap
    else:
        # Fewer polls as the gap grows (up to the sample's steps): the smallest gap within budget.
        low, high = min_gap, max_gap
        for _ in range(_BISECT_STEPS):
            middle = (low + high) / 2
            if expected_polls(middle) <= budget:
                high = middle
            else:
                low = middle
        gap = high
    durations, first = estimate(gap)
    return PollPlan(first_poll=first, gap=gap, longest=durations[-1])


def typical_duration(history: Sequence[float]) -> float | None:
    """The median of recent durations, or None while there is too little data to say."""
    if len(history) < MIN_HISTORY:
        return None
    return statistics.median(history)
