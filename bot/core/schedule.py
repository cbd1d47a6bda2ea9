"""When to poll a running task next: learned from how long recent tasks of its kind took.

Polling is the only way to learn that a task finished, so every schedule trades polls (load on the
image API) against overhead (how long a finished image waits for the poll that finds it). A poll
`gap` seconds after the previous one leaves a job that finished in between waiting up to `gap`
seconds, whatever its duration; so to keep the overhead of most jobs small at the least number of
polls, poll at one steady gap over the range where jobs finish, and not before that range starts.

With a history of durations the schedule therefore:

- puts the first poll where one and a half times as many recent jobs had finished as finish in the
  gap after it, so the first poll catches a little more than each later one (and no job waits much
  more than a gap for it),
- then polls every `gap` seconds, the smallest gap whose expected number of polls per job, over the
  recent durations, stays within `poll_budget`,
- and, once a task is older than every recent one, keeps that gap for a while and then backs off.

Recorded durations are detection times (the age at the poll that saw the task complete), later than
the true ones by about half a gap; the fit subtracts that half gap. Left in, it would make each fit
start polling later than the last, and the first poll would drift ever later.
Every delay is kept within [min_interval, max_interval], except the wait for the first poll, which may
be longer as long as the quickest recent job would still have been found within max_interval of
finishing. With min == max the schedule is a fixed poller.
"""

from __future__ import annotations

import bisect
import collections
import functools
import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_HISTORY = 5
# How much more the first poll catches than each later one. 1.0 put it about a third of a gap early
# (a poll spent for little); 1.5 is the best of 1, 1.5 and 2 in `python -m bench.mixes` on every mix.
FIRST_CATCH = 1.5
# A change of the service's speed shows as old-enough tasks that have not finished: of the newest
# CHANGE_WINDOW tasks older than the 95th percentile of recent durations, about one should still run;
# CHANGE_RUNNING or more (odds of about 1e-8 without a change) mean the durations changed.
CHANGE_WINDOW = 20
CHANGE_RUNNING = 10
_BISECT_STEPS = 30  # the gap to within (max - min) / 2**30 seconds


@dataclass(frozen=True)
class PollPlan:
    """A schedule fitted to one history: first poll, steady gap, and the longest recent duration."""

    first_poll: float
    gap: float
    longest: float
    shortest: float = 0.0


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
        if age < plan.first_poll and self.min_interval < self.max_interval:
            # Never less than the gap, even just before the first poll: the plan moves a little with
            # every finished job, and a poll that comes a moment early must not cost a second one.
            # The wait for the first poll may exceed max_interval, as long as the quickest recent
            # job would still be found within max_interval of finishing: polls at 15 and 30 s are
            # wasted on jobs that all take more than 30 s.
            wait = max(plan.first_poll - age, plan.gap)
            ceiling = max(self.max_interval, plan.shortest + self.max_interval - age)
            return max(self.min_interval, min(wait, ceiling))
        if age <= plan.longest:
            return self._clamp(max(plan.first_poll - age, plan.gap))
        # Older than anything seen lately: keep the gap for a while, then back off with age.
        return self._clamp(max(plan.gap, self.growth * (age - plan.longest)))

    def plan(self, history: Sequence[float]) -> PollPlan:
        """The schedule fitted to `history` (at least MIN_HISTORY durations); cached per history, since
        the runner asks after every poll and the history only changes when a job finishes."""
        return _fit(tuple(history), self.min_interval, self.max_interval, self.poll_budget)


def _first_poll(durations: list[float], gap: float) -> float:
    """The lowest of the (sorted) durations by which FIRST_CATCH times as many jobs had finished as
    finish within the gap after it. Too late a first poll catches more than that and moves earlier;
    too early a one catches less and moves later: it settles near one and a half gaps' worth."""
    for index, duration in enumerate(durations):
        done = bisect.bisect_right(durations, duration, lo=index)
        if done >= FIRST_CATCH * (bisect.bisect_right(durations, duration + gap, lo=done) - done):
            return duration
    return durations[-1]


@functools.lru_cache(maxsize=256)
def _fit(history: tuple[float, ...], min_gap: float, max_gap: float, budget: float) -> PollPlan:
    ordered = sorted(history)
    count = len(ordered)
    # suffix[k]: the sum of ordered[k:], so that the expected polls take O(log n), not O(n).
    suffix = list(itertools.accumulate(reversed(ordered), initial=0.0))[::-1]

    def first_poll(gap: float) -> float:
        # Detection times are about half a gap later than the true finishing times. Shifting every
        # duration alike shifts the first poll alike, so the sorted history serves every gap.
        return max(min_gap, _first_poll(ordered, gap) - gap / 2)

    def expected_polls(gap: float) -> float:
        first = first_poll(gap)
        # A job finishing at d > first is found on average half a gap after it, so the poll count
        # is 1 + (d - first) / gap + 1/2: a smooth curve, not the steps of the exact count, so the
        # fit does not chase the particular sample. (d is the detection time less half a gap.)
        caught = bisect.bisect_right(ordered, first + gap / 2)
        later = count - caught
        spread = suffix[caught] - later * (gap / 2) - later * first
        return (caught + 1.5 * later + spread / gap) / count

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
    return PollPlan(
        first_poll=first_poll(gap), gap=gap, longest=ordered[-1] - gap / 2, shortest=ordered[0] - gap / 2
    )


def with_running(
    finished: Sequence[float],
    running: Sequence[float],
    size: int,
    beyond: Sequence[float] = (),
    *,
    fresh: bool = False,
) -> list[float]:
    """Recent durations, with the tasks still running taken into account (Kaplan-Meier).

    The history holds the latest *finished* tasks, so right after a cold start or a burst it holds
    only the quick ones, and a plan fitted to it alone polls the slow ones far too often. A running
    task is a duration known only to exceed its age; the Kaplan-Meier estimate weighs both kinds. The
    result is a sample of the kind the schedule fits: quantiles of the estimate.

    The estimate ends at the oldest running age: a cohort of the latest submitted tasks is younger
    than the longest durations whenever jobs arrive faster than size / longest duration. The mass
    beyond it is spread like the durations in `beyond` (tasks that finished lately, whenever they
    were submitted) that exceed it; if none does, it is spread between the oldest running age and
    twice that, a guess that the next refits correct. Without the tail, a mix of 30-180 s jobs at 2
    a second looked like one ending at 100 s: the plan polled too often early and backed off on the
    jobs that were left.

    `fresh`: the cohort was cut at a change of durations, so that no task has finished yet is
    knowledge (every duration exceeds the running ages), not a cold start with nothing to go on.
    """
    if not running or (not finished and not fresh):
        return list(finished)
    marks = sorted([(d, True) for d in finished] + [(a, False) for a in running])
    at_risk = len(marks)
    survival = 1.0
    steps: list[tuple[float, float]] = []  # (duration, share of tasks finished by then)
    for moment, done in marks:
        if done:
            survival *= 1.0 - 1.0 / at_risk
            steps.append((moment, 1.0 - survival))
        at_risk -= 1
    tail = marks[-1][0]  # the oldest running age when a running task outlasts every finished one
    known = steps[-1][1] if steps else 0.0  # the share of tasks the estimate places before `tail`
    above = sorted(d for d in beyond if d > tail)
    count = min(size, len(marks))
    sample: list[float] = []
    step = 0
    for i in range(count):
        share = (i + 0.5) / count
        while step < len(steps) and steps[step][1] < share:
            step += 1
        if step < len(steps):
            sample.append(steps[step][0])
        elif above:
            rank = (share - known) / (1.0 - known) if known < 1.0 else 0.0
            sample.append(above[min(len(above) - 1, int(rank * len(above)))])
        else:
            # Nothing finished that late lately (a cold start, or just after a change): spread the
            # rest over [tail, 2 tail]. All of it at tail made the plan fit every job into the ages
            # seen so far, so it polled the long ones at a small gap until they finished.
            rank = (share - known) / (1.0 - known) if known < 1.0 else 0.0
            sample.append(tail * (1.0 + rank))
    return sample


class Cohort:
    """The latest submitted tasks of one kind: finished ones with their duration, running ones with
    their start. Kaplan-Meier needs such a cohort: the latest *finished* tasks mixed with whatever
    runs now would over-weigh long tasks, which are the ones most often found running."""

    def __init__(self, size: int, finished: Sequence[float] = ()) -> None:
        self.size = size
        self._order: collections.deque[int] = collections.deque()
        self._started: dict[int, float] = {}
        self._durations: dict[int, float] = {}
        self._submitted: dict[int, float] = {}
        self._cut: float | None = None  # tasks submitted before it ran at another speed
        self._finished_since_cut = 0
        # The latest finished tasks, whether or not still in the cohort: what the tail is drawn from.
        self._recent: collections.deque[float] = collections.deque(maxlen=size)
        # Durations from the database (oldest first here) stand for the cohort before this process.
        for n, duration in enumerate(reversed(finished)):
            self._admit(-(n + 1))
            self._durations[-(n + 1)] = duration
            self._recent.append(duration)

    def _admit(self, key: int) -> None:
        self._order.append(key)
        while len(self._order) > self.size:
            old = self._order.popleft()
            self._started.pop(old, None)
            self._durations.pop(old, None)
            self._submitted.pop(old, None)

    def started(self, key: int, at: float) -> None:
        if key not in self._started and key not in self._durations:
            self._admit(key)
            self._started[key] = at
            self._submitted[key] = at

    def finished(self, key: int, duration: float) -> None:
        self._recent.append(duration)
        self._finished_since_cut += 1
        if self._started.pop(key, None) is not None:
            self._durations[key] = duration

    def dropped(self, key: int) -> None:
        """A task that failed or was cancelled says nothing about how long images take."""
        if self._started.pop(key, None) is not None:
            self._order.remove(key)
            self._submitted.pop(key, None)

    def sample(self, now: float) -> list[float]:
        cut = self._change_point(now)
        if cut is None:
            running = [now - since for since in self._started.values()]
            return with_running(list(self._durations.values()), running, self.size, self._recent)
        # Only the tasks submitted since the change say how long tasks take now.
        since = self._submitted
        finished = [d for k, d in self._durations.items() if since.get(k, cut - 1.0) >= cut]
        running = [now - at for at in self._started.values() if at >= cut]
        return with_running(finished, running, self.size, self._recent, fresh=True)

    def _change_point(self, now: float) -> float | None:
        """When the durations changed, if the cohort shows that they did: the submit time from which
        on to trust it. Kept until the latest finished durations are all from after it, so that the
        change is not detected again from the old ones."""
        if self._cut is not None:
            if self._finished_since_cut >= self.size:
                self._cut = None
            return self._cut
        if len(self._recent) < CHANGE_WINDOW:
            return None
        recent = sorted(self._recent)
        late = recent[int(0.95 * (len(recent) - 1))]
        old_enough: list[int] = []
        for key in reversed(self._order):
            at = self._submitted.get(key)
            if at is not None and now - at > late:
                old_enough.append(key)
                if len(old_enough) == CHANGE_WINDOW:
                    break
        if len(old_enough) < CHANGE_WINDOW:
            return None
        overdue = [k for k in old_enough if k in self._started]
        if len(overdue) < CHANGE_RUNNING:
            return None
        # From the oldest overdue task on: older ones ran at the old speed.
        self._cut = min(self._submitted[k] for k in overdue)
        self._finished_since_cut = 0
        return self._cut


def typical_duration(history: Sequence[float]) -> float | None:
    """The median of recent durations, or None while there is too little data to say."""
    if len(history) < MIN_HISTORY:
        return None
    return statistics.median(history)
