"""The process measured by the load scenario: one JobRunner following many jobs at once, in real time,
against a sandbox API running in another process (so the sandbox's CPU is not counted here).

    python -m bench.loadworker --base-url URL --jobs 1000 --seconds 20 --out figures.json

Phases: intake (submit every job as fast as the runner takes them), then `--seconds` of holding
`--jobs` in flight (each delivered job is replaced at once). Writes event-loop lag per phase, peak
resident memory, and poll and delivery rates as JSON. Imports only the core (no discord.py): the
memory figure is the runner's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.lag import LagProbe
from bench.mix import adaptive_schedule_args, draw
from bench.recording_sink import TimingSink
from bench.stats import percentile
from bot.adapters.image_api import ImageApi, TaskStatus
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.models import ImageRequest, Origin
from bot.core.runner import JobRunner, RunnerConfig
from bot.core.schedule import PollSchedule
from bot.ops.runner_wiring import build_runner

SOURCE = "bench"
HISTORY_SOURCE = "bench-history"
INTAKE_LIMIT = 120.0  # seconds: a runner that cannot take the jobs in this time has failed anyway


class CountingApi(ImageApi):
    """The real client, counting status polls (the sandbox's own log lives in the other process)."""

    polls = 0

    async def poll(self, task_id: str) -> TaskStatus:
        self.polls += 1
        return await super().poll(task_id)


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MiB.

    VmHWM rather than getrusage's ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a child
    started by a big parent (the orchestrator holds discord.py and the fake) would report the
    parent's size. VmHWM belongs to this process's own address space, created at exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # Elsewhere, ru_maxrss (kibibytes on Linux, bytes on macOS): an upper bound at worst.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


async def seed_history(store: Store, durations: Sequence[float]) -> None:
    """Rows of jobs that finished before this run, as a bot that has been running has them: the
    schedule then starts from a learned history instead of a burst-biased one. They belong to
    another source, so the measured runner never resumes or polls them."""
    now = time.time()
    origin = Origin(source=HISTORY_SOURCE)
    for i, duration in enumerate(durations):
        finished = now - 100.0 + i  # oldest first, all in the recent past
        job = await store.create_job(ImageRequest(f"history {i}"), origin, finished - duration)
        await store.mark_running(job.id, f"history-{i}", finished - duration, finished)
        await store.mark_completed(job.id, [], finished, None)
        await store.mark_delivered(job.id, delivery="history", result_message_id=None, now=finished)


async def run(base_url: str, jobs: int, seconds: float, seed: int) -> dict[str, float]:
    config = RunnerConfig()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        async with open_session(FetchPolicy.build(base_url)) as session:
            store = await Store.open(Path(tmp) / "load.db")
            await seed_history(store, [draw(rng) for _ in range(config.history_size)])
            api = CountingApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=30.0)
            sink = TimingSink()
            schedule = PollSchedule(*adaptive_schedule_args())
            runner = build_runner(store, api, session, sink, config, schedule=schedule, source=SOURCE)
            probe = LagProbe()
            try:
                await runner.start()
                probe.start()
                intake_start = time.monotonic()
                for i in range(jobs):
                    await runner.enqueue(ImageRequest(f"load {i}"), Origin(source=SOURCE))
                await sink.wait_submitted(jobs, INTAKE_LIMIT)
                intake_seconds = time.monotonic() - intake_start
                steady_from, polls_before = probe.mark(), api.polls
                delivered_before = len(sink.arrivals)
                await _hold_in_flight(runner, sink, jobs, seconds)
                steady_lag = probe.samples_ms[steady_from:]
                intake_lag = probe.samples_ms[:steady_from]
                polls = api.polls - polls_before
                delivered = len(sink.arrivals) - delivered_before
            finally:
                await probe.stop()
                await runner.stop()
                await store.close()
    failed = sum(1 for a in sink.arrivals.values() if not a.delivered)
    return {
        "loop_lag_p50_ms": percentile(steady_lag, 50),
        "loop_lag_p99_ms": percentile(steady_lag, 99),
        "loop_lag_max_ms": max(steady_lag),
        "intake_lag_p99_ms": percentile(intake_lag or [0.0], 99),
        "intake_seconds": intake_seconds,
        "steady_seconds": seconds,
        "jobs_in_flight": float(jobs),
        "polls_per_second": polls / seconds,
        "deliveries_per_second": delivered / seconds,
        "failed_jobs": float(failed),
        "rss_peak_mb": peak_rss_mb(),
    }


async def _hold_in_flight(runner: JobRunner, sink: TimingSink, jobs: int, seconds: float) -> None:
    """For `seconds`, replace every job that ends, so that `jobs` stay in flight."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    replaced = len(sink.arrivals)
    next_id = jobs
    while (left := deadline - loop.time()) > 0:
        sink.changed.clear()
        ended = len(sink.arrivals)
        for _ in range(ended - replaced):
            await runner.enqueue(ImageRequest(f"load {next_id}"), Origin(source=SOURCE))
            next_id += 1
        replaced = ended
        try:
            await asyncio.wait_for(sink.changed.wait(), timeout=left)
        except TimeoutError:
            break


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadworker", description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.base_url.startswith("http://127.0.0.1:"):
        print("the load worker only talks to a sandbox on 127.0.0.1", file=sys.stderr)
        return 2
    figures = asyncio.run(run(args.base_url, args.jobs, args.seconds, args.seed))
    args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
