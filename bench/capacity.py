"""Capacity: what a poll costs the runner, how many polls a second one core gives, and how many tasks
in flight the runner carries before its schedule slips, with the take-over after a SIGKILL at each load.

Two parts, on the benchmark's throwaway PostgreSQL (bench/quota_pg.py), with the sandbox API in this
process (so its CPU is not the runners'):

- **Poll cost**: one runner process (`bench.mpworker`) follows `cap_cost_jobs` tasks that never end,
  each polled every second: more polls are due than it can make, so it polls as fast as it can. CPU
  seconds of that process per poll (client, store, schedule, everything) give the polls per second one
  core sustains; PostgreSQL's and the sandbox's CPU per poll are measured beside it (/proc).
- **Round trip**: the same single process against a sandbox that answers each poll after ROUND_TRIP
  seconds, as a gateway far away does, at POLL_CONCURRENCY 16 (the old default) and 64 (the new): one
  process makes at most concurrency / round trip polls a second whatever its CPU.
- **Loads**: for each count in `cap_loads`, three runner processes on one PostgreSQL keep that many
  jobs in flight (5-90 s, `bench.multiproc`), with JOB_LEASE_SECONDS 10. In a steady window: polls per
  second, the schedule's overhead (task finished in the sandbox -> a poll saw it), CPU per poll and
  event-loop lag per process; then one process is SIGKILLed and the take-over is timed against lease +
  POLL_MAX_INTERVAL. Double claims (a task polled by two processes at once) and images shown twice
  (an outcome handed over by two processes) are counted over the whole run.

The capacity is the largest load whose overhead p95 stays within 10 % of the first load's (1,000).
The model: polls/s needed = tasks in flight x polls per task / task duration; cores needed = that x
CPU per poll. `python -m bench --only capacity` prints the table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.mix import draw
from bench.multiproc import Load, LoadResult, fresh_schema, run_load
from bench.profiles import Profile
from sandbox.server import Sandbox, SandboxConfig, log_uniform

# The overhead may grow by this much over the first load's and the load still counts as carried.
SLIP = 1.10
NEVER_ENDS = 10_000_000.0  # seconds: the poll-cost run's tasks run for ever
# The model's inputs for the 5-90 s mix: the schedule's polls per task (`overhead`'s polls_per_job),
# and the mean of a log-uniform 5-90 s duration, (90 - 5) / ln(90 / 5).
POLLS_PER_TASK = 7.4
MEAN_DURATION = 29.4
ROUND_TRIP = 0.1  # seconds a poll takes to be answered in the round-trip part
CONCURRENCIES = (16, 64)  # POLL_CONCURRENCY before and after this release


@dataclass(frozen=True)
class CapacityResult:
    cost: LoadResult
    loads: list[LoadResult]
    round_trip: dict[int, LoadResult]  # by POLL_CONCURRENCY

    @property
    def capacity(self) -> int:
        """The largest load (each one up to it included) whose overhead p95 is within SLIP of the first's."""
        base = self.loads[0].overhead_p95_s
        carried = 0
        for result in self.loads:
            overhead = result.overhead_p95_s
            if base is None or overhead is None or overhead > base * SLIP:
                break
            carried = result.load.jobs
        return carried

    def carried(self) -> list[LoadResult]:
        return [r for r in self.loads if r.load.jobs <= self.capacity] or self.loads[:1]

    def figures(self) -> dict[str, float | None]:
        cost, carried = self.cost, self.carried()
        figures: dict[str, float | None] = {
            "cap_cpu_per_poll_ms": cost.runner_cpu_per_poll_ms,
            "cap_polls_per_s_per_core": 1000.0 / cost.runner_cpu_per_poll_ms
            if cost.runner_cpu_per_poll_ms
            else None,
            "cap_pg_cpu_per_poll_ms": cost.postgres_cpu_per_poll_ms,
            "cap_sandbox_cpu_per_poll_ms": cost.sandbox_cpu_per_poll_ms,
            "cap_cost_polls_per_s": cost.polls_per_s,
            "cap_cost_runner_cores": cost.runner_cpu_per_s,
            "cap_cost_loop_lag_p99_ms": max(cost.loop_lag_p99_ms, default=None),
            "cap_capacity_jobs": float(self.capacity),
            # A take-over that never finished counts as the benchmark's limit (lease + poll max + 60 s).
            "cap_takeover_max_s": max(_takeover(r) for r in carried),
            "cap_takeover_goal_s": carried[0].load.lease + carried[0].load.poll_max,
            "cap_double_claims": float(sum(r.double_claims for r in self.loads)),
            "cap_images_shown_twice": float(sum(r.images_twice for r in self.loads)),
            "cap_loop_lag_p99_ms": max(max(r.loop_lag_p99_ms, default=0.0) for r in carried),
        }
        for concurrency, r in self.round_trip.items():
            figures[f"cap_rtt_polls_per_s_{concurrency}"] = r.polls_per_s
        for r in self.loads:
            n = r.load.jobs
            figures |= {
                f"cap_overhead_p95_s_{n}": r.overhead_p95_s,
                f"cap_polls_per_s_{n}": r.polls_per_s,
                f"cap_takeover_s_{n}": r.failover_s,
                f"cap_loop_lag_p99_ms_{n}": max(r.loop_lag_p99_ms, default=None),
                f"cap_runner_cpu_per_poll_ms_{n}": r.runner_cpu_per_poll_ms,
                f"cap_polls_per_task_{n}": r.polls_per_task,
            }
        figures |= self.model()
        return figures

    def model(self) -> dict[str, float | None]:
        """What 10,000 tasks in flight need: polls per second from the schedule's polls per task and
        the mix's mean duration (a run this short sees mostly the quick tasks end, so its own count
        is biased low), and cores from what the first load used, in proportion to tasks in flight."""
        first = self.loads[0]
        scale = 10_000 / first.load.jobs
        postgres_cores = first.postgres_cpu_per_poll_ms * first.polls_per_s / 1000.0
        return {
            "cap_polls_needed_per_s_10000": 10_000 * POLLS_PER_TASK / MEAN_DURATION,
            "cap_runner_cores_needed_10000": first.runner_cpu_per_s * scale,
            "cap_pg_cores_needed_10000": postgres_cores * scale,
        }

    def table(self) -> str:
        lines = [
            f"poll cost: {self.cost.runner_cpu_per_poll_ms:.3f} ms runner CPU per poll"
            f" ({self.cost.polls_per_s:.0f} polls/s on {self.cost.runner_cpu_per_s:.2f} cores),"
            f" PostgreSQL {self.cost.postgres_cpu_per_poll_ms:.3f} ms, sandbox"
            f" {self.cost.sandbox_cpu_per_poll_ms:.3f} ms",
            f"round trip {ROUND_TRIP * 1000:.0f} ms, one process: "
            + ", ".join(
                f"POLL_CONCURRENCY {c}: {r.polls_per_s:.0f} polls/s (at most {c / ROUND_TRIP:.0f})"
                for c, r in self.round_trip.items()
            ),
            "| in flight | polls/s | polls/task | overhead p50 / p95 | runner CPU/poll | runner cores"
            " | PostgreSQL CPU/poll | take-over (held) | lag p99 per process | double claims | shown twice |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.loads:
            lines.append(
                f"| {r.load.jobs} | {r.polls_per_s:.0f} | {_num(r.polls_per_task, 2)}"
                f" | {_num(r.overhead_p50_s, 2)} / {_num(r.overhead_p95_s, 2)} s"
                f" | {r.runner_cpu_per_poll_ms:.3f} ms | {r.runner_cpu_per_s:.2f}"
                f" | {r.postgres_cpu_per_poll_ms:.3f} ms"
                f" | {_num(r.failover_s, 1)} s ({_num(r.held_taken_s, 1)} s, {r.held_at_kill})"
                f" | {' / '.join(f'{lag:.1f}' for lag in r.loop_lag_p99_ms)} ms"
                f" | {r.double_claims} | {r.images_twice} |"
            )
        lines.append(
            f"capacity: {self.capacity} tasks in flight (overhead p95 within 10 % of the first load's)"
        )
        return "\n".join(lines)


def _takeover(result: LoadResult) -> float:
    load = result.load
    return result.failover_s if result.failover_s is not None else load.lease + load.poll_max + 60.0


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


async def _one_process(
    profile: Profile, history: list[float], name: str, concurrency: int = 0, poll_delay: float = 0.0
) -> LoadResult:
    """One runner process following `cap_cost_jobs` tasks that never end, each due every second: more
    polls are due than it makes, so it polls as fast as its CPU (or its round trip) allows."""
    load = Load(
        profile.cap_cost_jobs,
        processes=1,
        seconds=profile.cap_cost_seconds,
        warmup=profile.cap_warmup,
        interval=1.0,
        kill=False,
        concurrency=concurrency,
    )
    async with fresh_schema(name) as url:
        sandbox = Sandbox(SandboxConfig(duration=NEVER_ENDS, request_log_size=1000, poll_delay=poll_delay))
        await sandbox.start()
        try:
            return await run_load(load, sandbox, url, history)
        finally:
            await sandbox.stop()


async def run_capacity(profile: Profile) -> CapacityResult:
    rng = random.Random(profile.seed)
    history = [draw(rng) for _ in range(profile.mp_history)]
    cost = await _one_process(profile, history, "bench_cap_cost")
    round_trip = {
        c: await _one_process(profile, history, f"bench_cap_rtt_{c}", c, ROUND_TRIP) for c in CONCURRENCIES
    }
    loads: list[LoadResult] = []
    for n, jobs in enumerate(profile.cap_loads):
        load = Load(
            jobs,
            lease=profile.mp_lease,
            poll_max=profile.mp_poll_max,
            seconds=profile.cap_seconds,
            warmup=profile.cap_warmup,
            after=profile.mp_after,
        )
        sampler = log_uniform(profile.mp_duration_low, profile.mp_duration_high)
        sandbox = Sandbox(
            SandboxConfig(duration_sampler=sampler, seed=profile.seed + n, request_log_size=None)
        )
        async with fresh_schema(f"bench_cap_{n}") as url:
            await sandbox.start()
            try:
                loads.append(await run_load(load, sandbox, url, history))
            finally:
                await sandbox.stop()
        print(f"[bench] capacity: {jobs} in flight measured", flush=True)
    result = CapacityResult(cost, loads, round_trip)
    print(result.table(), flush=True)
    return result
