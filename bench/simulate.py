"""What a poll schedule can achieve, computed without any I/O: `python -m bench.simulate`.

Two tools for the polls-versus-overhead trade-off:

- `simulate`: an event-driven run of a PollSchedule on a Poisson stream of jobs, with the history the
  runner would really have (the detection ages of the 50 most recently finished jobs, newest first).
- `grid`: the best any schedule can do when the duration distribution is known exactly. A poll only
  ever answers "not yet", so every schedule is a fixed list of poll ages; for a p95 of overhead the
  best list is a constant gap starting one gap after the shortest possible duration (see the README
  note printed by `main`).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.mix import HIGH, LOW
from bench.stats import mean, percentile
from bot.core.schedule import PollSchedule

Sampler = Callable[[random.Random], float]


def log_uniform(low: float = LOW, high: float = HIGH) -> Sampler:
    def sample(rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(low), math.log(high)))

    return sample


@dataclass(frozen=True)
class SimFigures:
    polls_per_job: float
    overhead_p95: float
    overhead_p50: float


def simulate(
    schedule: PollSchedule,
    durations: Sampler,
    *,
    jobs: int = 3000,
    rate: float = 2.0,
    warmup: float = 300.0,
    seed: int = 1,
    history_size: int = 50,
    change_at: float | None = None,
    later_durations: Sampler | None = None,
) -> SimFigures:
    """Figures over the jobs submitted after `warmup` seconds (or after `change_at` + `warmup`, when the
    durations switch to `later_durations` at `change_at`). Overhead here is pure schedule: no I/O."""
    rng = random.Random(seed)
    events: list[tuple[float, int, float, float, int]] = []  # (due, tiebreak, submitted, duration, polls)
    counter = itertools.count()
    t = 0.0
    for _ in range(jobs):
        t += rng.expovariate(rate)
        sampler = (
            later_durations if change_at is not None and t >= change_at and later_durations else durations
        )
        heapq.heappush(events, (t, next(counter), t, sampler(rng), 0))
    measure_from = warmup if change_at is None else change_at + warmup
    history: list[float] = []
    polls: list[float] = []
    overheads: list[float] = []
    while events:
        now, _, submitted, duration, count = heapq.heappop(events)
        age = now - submitted
        if count > 0 and age >= duration:
            history.insert(0, age)  # what the runner learns: the age at detection
            del history[history_size:]
            if submitted >= measure_from:
                polls.append(float(count))
                overheads.append(age - duration)
            continue
        due = now + schedule.next_delay(age, history)
        heapq.heappush(events, (due, next(counter), submitted, duration, count + 1))
    return SimFigures(mean(polls), percentile(overheads, 95), percentile(overheads, 50))


def grid(
    gap: float, durations: Sampler, *, samples: int = 100_000, seed: int = 2, low: float = LOW
) -> SimFigures:
    """Polls at low + gap, low + 2 gap, ...: the best constant-gap schedule knowing the true minimum."""
    rng = random.Random(seed)
    return grid_on(gap, [durations(rng) for _ in range(samples)], low=low)


def grid_on(gap: float, durations: Sequence[float], *, low: float = LOW) -> SimFigures:
    """`grid` on given durations (for instance the very jobs a schedule was measured on)."""
    polls: list[float] = []
    overheads: list[float] = []
    first = low + gap
    for d in durations:
        n = 1 if d <= first else 1 + math.ceil((d - first) / gap)
        polls.append(float(n))
        overheads.append(first + (n - 1) * gap - d)
    return SimFigures(mean(polls), percentile(overheads, 95), percentile(overheads, 50))


def main() -> int:
    mix = log_uniform()
    print(f"durations log-uniform {LOW:g}-{HIGH:g} s; schedule overhead only (no I/O)\n")
    print("best possible (known distribution), constant gap:")
    print(f"  {'gap s':>6} {'polls/job':>10} {'p95 s':>7}")
    for gap in (0.95, 1.0, 2.0, 3.0, 3.3, 3.5, 4.0, 5.0):
        f = grid(gap, mix, samples=50_000)
        print(f"  {gap:>6.2f} {f.polls_per_job:>10.2f} {f.overhead_p95:>7.2f}")
    print("\nPollSchedule, live history of 50 detection ages, 2 jobs/s:")
    print(f"  {'schedule':<34} {'polls/job':>10} {'p95 s':>7}")
    for label, schedule in (
        ("fixed 5 s (5, 5, 5)", PollSchedule(5, 5, 5)),
        ("adaptive, budget 6.5", PollSchedule(poll_budget=6.5)),
        ("adaptive, budget 7.5 (default)", PollSchedule()),
        ("adaptive, budget 8.0", PollSchedule(poll_budget=8.0)),
        ("adaptive, budget 25", PollSchedule(poll_budget=25.0)),
        ("adaptive, max_interval 1.0", PollSchedule(max_interval=1.0, poll_budget=100.0)),
    ):
        f = simulate(schedule, mix)
        print(f"  {label:<34} {f.polls_per_job:>10.2f} {f.overhead_p95:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
