"""The poll schedule on four job mixes, simulated: `python -m bench.mixes` (or the `mixes` scenario).

The figures come from an event simulation, not the sandbox: running the real sandbox for every mix
(thousands of jobs of up to three minutes each) would make `make bench` far too long. The simulation
runs the real `PollSchedule` with the same history mechanism as the runner (`bot.schedule.Cohort`:
the latest 400 submitted jobs of the kind, running ones counted by Kaplan-Meier, the sample refreshed
at most once a second or when a job finishes), on a Poisson stream of 2 jobs a second. Overhead here
is the schedule's part only: from the task finishing to the poll that sees it (no I/O).

For each mix: the bot's polls per job and p95 overhead, a fixed 5-second poller's, and the oracle:
the best p95 any schedule reaches on the same jobs at the bot's polls per job when it knows their
durations (`bench.simulate.grid_on`: a constant gap from one gap after the mix's shortest
duration). The switch mix changes from short to long jobs halfway; its row covers the jobs
submitted from 100 after the switch, and `recovery` lists the p95 of each 100-job window after
the switch against the oracle on that window's jobs at their own polls per job.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from bench.simulate import grid_on, log_uniform
from bench.stats import mean, percentile
from bot.core.runner import RunnerConfig
from bot.core.schedule import Cohort, PollSchedule

RATE = 2.0  # jobs a second
HISTORY = RunnerConfig().history_size
WINDOW = 100  # jobs per window after the switch
SEEDS = (20240601, 20240602, 20240603)  # what `make bench` runs


@dataclass(frozen=True)
class Mix:
    name: str
    low: float
    high: float
    later: tuple[float, float] | None = None
    """For a switch: the (low, high) of the jobs submitted in the second half."""


MIXES = (
    Mix("standard 5-90 s", 5.0, 90.0),
    Mix("short 2-12 s", 2.0, 12.0),
    Mix("long 30-180 s", 30.0, 180.0),
    Mix("switch 2-12 s -> 30-180 s", 2.0, 12.0, later=(30.0, 180.0)),
)


@dataclass(frozen=True)
class SimJob:
    index: int
    polls: int
    overhead: float
    duration: float


def run_jobs(schedule: PollSchedule, mix: Mix, jobs: int, seed: int) -> list[SimJob]:
    """Every job of one run, in submission order: the runner's schedule and history, no I/O."""
    rng = random.Random(seed)
    early = log_uniform(mix.low, mix.high)
    late = log_uniform(*mix.later) if mix.later else early
    cohort = Cohort(HISTORY)
    cached: tuple[float, list[float]] | None = None

    def sample(now: float) -> list[float]:
        nonlocal cached
        if cached is None or now - cached[0] >= 1.0:
            cached = (now, cohort.sample(now))
        return cached[1]

    events: list[tuple[float, int, int]] = []  # (time, tiebreak, job index)
    order = itertools.count()
    submitted: list[float] = []
    durations: list[float] = []
    polls = [0] * jobs
    out: list[SimJob | None] = [None] * jobs
    t = 0.0
    for index in range(jobs):
        t += rng.expovariate(RATE)
        submitted.append(t)
        durations.append((early if index < jobs // 2 else late)(rng))
        heapq.heappush(events, (t, next(order), index))
    started: set[int] = set()
    while events:
        now, _, index = heapq.heappop(events)
        age = now - submitted[index]
        if index not in started:
            # The submit: the runner plans the first poll from age 0.
            started.add(index)
            cohort.started(index, now)
            heapq.heappush(events, (now + schedule.next_delay(0.0, sample(now)), next(order), index))
            continue
        history = sample(now)  # taken before the poll, as the runner does
        polls[index] += 1
        if age >= durations[index]:
            cohort.finished(index, age)  # the runner learns the detection age
            cached = None
            out[index] = SimJob(index, polls[index], age - durations[index], durations[index])
            continue
        heapq.heappush(events, (now + schedule.next_delay(age, history), next(order), index))
    return [job for job in out if job is not None]


def oracle_p95(jobs: Sequence[SimJob], low: float) -> float:
    """The best p95 any schedule reaches on these very jobs at their polls per job: a constant gap
    from one gap after the mix's shortest duration, knowing the durations (`grid_on`)."""
    durations = [j.duration for j in jobs]
    polls_per_job = mean([float(j.polls) for j in jobs])
    small, large = 0.01, 1000.0
    for _ in range(40):  # fewer polls as the gap grows
        middle = (small * large) ** 0.5
        if grid_on(middle, durations, low=low).polls_per_job > polls_per_job:
            small = middle
        else:
            large = middle
    return grid_on(large, durations, low=low).overhead_p95


@dataclass(frozen=True)
class MixRow:
    mix: str
    polls: float
    p95: float
    fixed5_polls: float
    fixed5_p95: float
    oracle_p95: float
    recovery: tuple[tuple[float, float], ...] = ()
    """Switch only: (p95, oracle p95 at the window's polls) per 100-job window after the switch."""

    @property
    def ratio(self) -> float:
        return self.p95 / self.oracle_p95


def _measured(jobs: Sequence[SimJob], start: int) -> list[SimJob]:
    return [j for j in jobs if j.index >= start]


def evaluate(mix: Mix, schedule: PollSchedule, jobs: int, seeds: Sequence[int]) -> MixRow:
    """One mix over several runs (seeds), pooled: a p95 over 100 jobs is the fifth-largest value."""
    later = mix.later or (mix.low, mix.high)
    # Steady state: skip the warm-up from an empty history (a quarter of the run), or for the switch
    # the first 100 jobs after it, which `recovery` shows.
    start = jobs // 2 + WINDOW if mix.later else jobs // 4
    measured: list[SimJob] = []
    fixed_measured: list[SimJob] = []
    windows: list[list[SimJob]] = [[] for _ in range(4)]
    for seed in seeds:
        bot = run_jobs(schedule, mix, jobs, seed)
        measured += _measured(bot, start)
        fixed_measured += _measured(run_jobs(PollSchedule(5, 5, 5), mix, jobs, seed), start)
        if mix.later:
            after = _measured(bot, jobs // 2)
            for w, window in enumerate(windows):
                window.extend(after[w * WINDOW : (w + 1) * WINDOW])
    polls = mean([float(j.polls) for j in measured])
    recovery = tuple(
        (percentile([j.overhead for j in window], 95), oracle_p95(window, later[0]))
        for window in windows
        if window
    )
    return MixRow(
        mix=mix.name,
        polls=polls,
        p95=percentile([j.overhead for j in measured], 95),
        fixed5_polls=mean([float(j.polls) for j in fixed_measured]),
        fixed5_p95=percentile([j.overhead for j in fixed_measured], 95),
        oracle_p95=oracle_p95(measured, later[0]),
        recovery=recovery,
    )


def evaluate_all(schedule: PollSchedule, jobs: int, seeds: Sequence[int]) -> list[MixRow]:
    return [evaluate(mix, schedule, jobs, seeds) for mix in MIXES]


def figures(rows: Sequence[MixRow]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for row in rows:
        key = row.mix.split()[0]
        out[f"mix_{key}_polls_per_job"] = row.polls
        out[f"mix_{key}_p95_s"] = row.p95
        out[f"mix_{key}_fixed5_polls_per_job"] = row.fixed5_polls
        out[f"mix_{key}_fixed5_p95_s"] = row.fixed5_p95
        out[f"mix_{key}_oracle_p95_s"] = row.oracle_p95
        out[f"mix_{key}_vs_oracle"] = row.ratio
        for n, (p95, oracle) in enumerate(row.recovery, start=1):
            out[f"mix_{key}_window{n}_vs_oracle"] = p95 / oracle
    out["mix_worst_vs_oracle"] = max(row.ratio for row in rows)
    return out


def table(rows: Sequence[MixRow]) -> str:
    lines = [
        f"{'mix':<27} {'polls/job':>9} {'p95 s':>7} {'fixed5 polls':>12} {'fixed5 p95':>10} "
        f"{'oracle p95':>10} {'bot/oracle':>10}"
    ]
    for r in rows:
        lines.append(
            f"{r.mix:<27} {r.polls:>9.2f} {r.p95:>7.2f} {r.fixed5_polls:>12.2f} {r.fixed5_p95:>10.2f} "
            f"{r.oracle_p95:>10.2f} {r.ratio:>10.2f}"
        )
        for n, (p95, oracle) in enumerate(r.recovery, start=1):
            lines.append(
                f"  jobs {(n - 1) * WINDOW}-{n * WINDOW} after the switch: p95 {p95:.2f} s, "
                f"oracle {oracle:.2f} s, ratio {p95 / oracle:.2f}"
            )
    return "\n".join(lines)


def main() -> int:
    from bench.mix import adaptive_schedule_args

    schedule = PollSchedule(*adaptive_schedule_args())
    print(table(evaluate_all(schedule, 4000, SEEDS)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
