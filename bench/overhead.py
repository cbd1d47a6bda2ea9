"""Completion overhead and polls per job: the adaptive schedule and a fixed 5-second poller, side by
side on exactly the same job mix (durations log-uniform in 5-90 s), time scaled by ScaledClock.

Method. One Poisson stream of jobs goes into both runners (each with its own store and session, as
two bots would have; the same prompt gets the same duration in both). The jobs that arrive during
the first `warmup_seconds` warm the runners up from an empty history and are reported apart
(`warmup_*`); the measured jobs arrive after that, in a steady state: every duration class has
finished many times and the 50-job history a runner learns from is a fair sample. For a job:

    overhead = (virtual time the completing poll reached the sandbox - virtual completion time)
             + (real seconds from that poll's arrival to the image reaching the sink)

The first term is what the schedule costs; it scales with the clock like the job durations do. The
second term is real work (answering the poll, the runner's bookkeeping, downloading the image, the
sink) and is counted in real seconds, not multiplied by the time factor. What remains inflated is the
runner's own lateness before the poll reaches the sandbox (its loop waking and claiming the job, a
few milliseconds, times the factor), so the figure errs on the slow side. Polls are counted from the
sandbox's request log (each GET /xai/tasks for the task).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.lag import probing
from bench.mix import PairedSandbox, adaptive_schedule_args, draw
from bench.profiles import Profile
from bench.recording_sink import Arrival, TimingSink
from bench.stats import mean, percentile
from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.clock import ScaledClock
from bot.core.models import ImageRequest, Origin
from bot.core.runner import JobRunner, RunnerConfig
from bot.core.schedule import PollSchedule
from bot.ops.runner_wiring import build_runner
from sandbox.server import SandboxConfig

SOURCE = "bench"
ORIGIN = Origin(source=SOURCE)
WARMUP, MEASURED = "warm-up", "measured"
# Virtual seconds to wait beyond the longest job before giving up on the drain.
SLACK = 60.0


@dataclass
class Lane:
    """One runner with its own store, session and sink: one bot, as far as the sandbox can tell."""

    name: str
    runner: JobRunner
    sink: TimingSink


@contextlib.asynccontextmanager
async def lane(
    name: str, schedule: PollSchedule, db_path: Path, base_url: str, clock: ScaledClock
) -> AsyncIterator[Lane]:
    async with open_session(FetchPolicy.build(base_url)) as session:
        store = await Store.open(db_path)
        api = ImageApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=30.0)
        sink = TimingSink()
        runner = build_runner(
            store, api, session, sink, RunnerConfig(), schedule=schedule, source=SOURCE, clock=clock
        )
        try:
            await runner.start()
            yield Lane(name, runner, sink)
        finally:
            await runner.stop()
            await store.close()


@dataclass(frozen=True)
class JobFigures:
    overhead: float
    """Seconds, in the honest units described in the module docstring."""
    runner_view: float
    """The same, taken from the runner's clock at detection: also inflates the poll's round trip."""
    delivery: float
    """Real seconds from the completing poll's arrival at the sandbox to the sink."""
    polls: int


@dataclass(frozen=True)
class LaneFigures:
    jobs: list[JobFigures]

    def summary(self, prefix: str) -> dict[str, float | None]:
        overheads = [j.overhead for j in self.jobs]
        return {
            f"{prefix}overhead_p50_s": percentile(overheads, 50),
            f"{prefix}overhead_p95_s": percentile(overheads, 95),
            f"{prefix}overhead_max_s": max(overheads),
            f"{prefix}polls_per_job": mean([float(j.polls) for j in self.jobs]),
        }


@dataclass(frozen=True)
class OverheadResult:
    adaptive: LaneFigures
    fixed5: LaneFigures
    warmup: LaneFigures
    time_factor: float
    loop_lag_p99_ms: float

    def figures(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        out |= self.adaptive.summary("")
        out |= self.fixed5.summary("fixed5_")
        out |= self.warmup.summary("warmup_")
        out["overhead_runner_view_p95_s"] = percentile([j.runner_view for j in self.adaptive.jobs], 95)
        out["overhead_delivery_p95_ms"] = percentile([j.delivery for j in self.adaptive.jobs], 95) * 1000
        out["overhead_jobs"] = float(len(self.adaptive.jobs))
        out["warmup_jobs"] = float(len(self.warmup.jobs))
        out["overhead_time_factor"] = self.time_factor
        out["overhead_loop_lag_p99_ms"] = self.loop_lag_p99_ms
        return out


async def run_overhead(profile: Profile) -> OverheadResult:
    clock = ScaledClock(profile.time_factor)
    arrivals = _arrivals(profile)
    plan: dict[str, float] = {}
    sandbox = PairedSandbox(plan, SandboxConfig(clock=clock.time, seed=profile.seed))
    base_url = await sandbox.start()
    lanes_spec = [
        ("adaptive", PollSchedule(*adaptive_schedule_args())),
        ("fixed5", PollSchedule(min_interval=5, max_interval=5, first_poll=5)),
    ]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
            async with contextlib.AsyncExitStack() as stack:
                lanes = [
                    await stack.enter_async_context(lane(n, s, Path(tmp) / f"{n}.db", base_url, clock))
                    for n, s in lanes_spec
                ]
                async with probing() as probe:
                    await _stream(clock, arrivals, plan, lanes)
                    drain = clock.real_seconds(90.0 + SLACK) + 10.0
                    for ln in lanes:
                        await ln.sink.wait_for(len(arrivals), drain)
                    lag = percentile(probe.samples_ms or [0.0], 99)
                anchor = (time.monotonic(), clock.time())
                per_lane = {ln.name: ln.sink.arrivals for ln in lanes}
    finally:
        await sandbox.stop()

    unpaired = [
        a.prompt
        for outcomes in per_lane.values()
        for a in outcomes.values()
        if a.task_id is None or abs(sandbox.tasks[a.task_id].duration - plan[a.prompt]) > 1e-9
    ]
    if unpaired:
        raise RuntimeError(f"{len(unpaired)} task(s) did not get their planned duration: mix not paired")
    polls = _polls_by_task(sandbox)

    def figures(name: str, prefix: str) -> LaneFigures:
        chosen = [a for a in per_lane[name].values() if a.prompt.startswith(prefix)]
        return LaneFigures([_job_figures(a, sandbox, polls, anchor, clock.factor) for a in chosen])

    return OverheadResult(
        adaptive=figures("adaptive", MEASURED),
        fixed5=figures("fixed5", MEASURED),
        warmup=figures("adaptive", WARMUP),
        time_factor=clock.factor,
        loop_lag_p99_ms=lag,
    )


@dataclass(frozen=True)
class _Arrival:
    offset: float
    """Virtual seconds after the start of the stream."""
    prompt: str
    duration: float


def _arrivals(profile: Profile) -> list[_Arrival]:
    """The whole stream, drawn up front from the profile's seed: the same jobs every run."""
    gaps, durations = random.Random(profile.seed), random.Random(profile.seed + 1)
    out: list[_Arrival] = []
    offset, measured = 0.0, 0
    while measured < profile.measured_jobs:
        offset += gaps.expovariate(profile.arrival_rate)
        if offset < profile.warmup_seconds:
            prompt = f"{WARMUP} {len(out)}"
        else:
            prompt, measured = f"{MEASURED} {measured}", measured + 1
        out.append(_Arrival(offset, prompt, draw(durations)))
    return out


async def _stream(
    clock: ScaledClock, arrivals: list[_Arrival], plan: dict[str, float], lanes: list[Lane]
) -> None:
    """Submit every job at its virtual arrival time, the same job to every lane at once."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for arrival in arrivals:
        await asyncio.sleep(max(0.0, start + clock.real_seconds(arrival.offset) - loop.time()))
        plan[arrival.prompt] = arrival.duration
        for ln in lanes:
            await ln.runner.enqueue(ImageRequest(arrival.prompt), ORIGIN)


@dataclass(frozen=True)
class _Poll:
    clock: float
    at: float


def _polls_by_task(sandbox: PairedSandbox) -> dict[str, list[_Poll]]:
    if sandbox.requests.maxlen is not None and len(sandbox.requests) >= sandbox.requests.maxlen:
        raise RuntimeError("the sandbox's request log overflowed; polls cannot be counted")
    polls: dict[str, list[_Poll]] = defaultdict(list)
    for r in sandbox.requests:
        if r.method == "GET" and r.path == "/xai/tasks" and "taskId" in r.query:
            polls[r.query["taskId"]].append(_Poll(r.clock, r.at))
    return polls


def _job_figures(
    a: Arrival,
    sandbox: PairedSandbox,
    polls: dict[str, list[_Poll]],
    anchor: tuple[float, float],
    factor: float,
) -> JobFigures:
    if a.task_id is None or not a.delivered or a.finished_at is None:
        raise RuntimeError(f"job {a.job_id} ({a.prompt}) was not delivered")
    completed = sandbox.completed_at(a.task_id)
    task_polls = polls.get(a.task_id)
    if completed is None or not task_polls:
        raise RuntimeError(f"task {a.task_id} is not complete or was never polled")
    # The runner stops polling a task once it has seen it complete: its last poll is the one.
    seen = task_polls[-1]
    delivery = a.at - seen.at
    overhead = (seen.clock - completed) + delivery
    # The runner's view: its own clock when the poll returned, converted back to real time.
    detected_real = anchor[0] - (anchor[1] - a.finished_at) / factor
    runner_view = (a.finished_at - completed) + (a.at - detected_real)
    return JobFigures(overhead, runner_view, delivery, len(task_polls))
