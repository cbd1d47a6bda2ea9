"""An outage with many jobs in flight: how many requests the bot sends while the image API is down,
and how soon the images that finished meanwhile reach their members once it is back.

Method. One runner with the default settings (adaptive schedule, POLL_MAX_INTERVAL 15 s, 16 polls in
flight) and a learned history takes `outage_jobs` jobs (durations log-uniform 5-90 s) against the
sandbox in this process. As soon as every job has been submitted, the sandbox answers every request
with 503 for `outage_seconds`. Counted from the sandbox's request log:

- requests per second during the outage (every request that reached the API: polls and probes);
- for each task that finished during the outage or within POLL_MAX_INTERVAL after it, the seconds
  from max(task finished, outage end) to the image reaching the sink (downloaded, handed over).

Full and quick runs are in real time (no scaling: the backlog of images delivered at once after the
outage is real work, and scaling time would multiply it); the smoke run scales time by its factor.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.loadworker import seed_history
from bench.mix import adaptive_schedule_args, draw
from bench.profiles import Profile
from bench.recording_sink import TimingSink
from bench.stats import percentile
from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.clock import ScaledClock, SystemClock
from bot.core.models import ImageRequest, Origin
from bot.core.runner import RunnerConfig
from bot.core.schedule import PollSchedule
from bot.ops.runner_wiring import build_runner
from sandbox.server import Sandbox, SandboxConfig

SOURCE = "bench"


@dataclass(frozen=True)
class OutageResult:
    jobs: int
    outage_seconds: float
    requests_during: int
    latencies: list[float]
    backlog_delivered: list[float]
    """When each task that finished during the outage was delivered (the clock's seconds)."""
    failed: int
    max_interval: float

    def figures(self) -> dict[str, float | None]:
        return {
            "outage_requests_per_s": self.requests_during / self.outage_seconds,
            "outage_recovery_p95_s": percentile(self.latencies, 95) if self.latencies else None,
            "outage_recovery_max_s": max(self.latencies) if self.latencies else None,
            "outage_jobs_in_flight": float(self.jobs),
            "outage_seconds": self.outage_seconds,
            "outage_backlog_jobs": float(len(self.latencies)),
            "outage_failed_jobs": float(self.failed),
            # The tasks that finished during the outage share one recovery moment: the spread of
            # their deliveries is the time it took to work that backlog off.
            "outage_drain_s": (
                max(self.backlog_delivered) - min(self.backlog_delivered) if self.backlog_delivered else None
            ),
        }


async def run_outage(profile: Profile) -> OutageResult:
    factor = profile.outage_time_factor
    clock = ScaledClock(factor) if factor != 1.0 else None
    now = clock.time if clock is not None else time.monotonic
    rng = random.Random(profile.seed)
    sandbox = Sandbox(
        SandboxConfig(duration_sampler=draw, seed=profile.seed, clock=now, request_log_size=None)
    )
    base_url = await sandbox.start()
    min_interval, max_interval, first_poll = adaptive_schedule_args()
    schedule = PollSchedule(min_interval, max_interval, first_poll)
    config = RunnerConfig()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
            async with open_session(FetchPolicy.build(base_url), total_timeout=60) as session:
                store = await Store.open(Path(tmp) / "outage.db")
                await seed_history(store, [draw(rng) for _ in range(config.history_size)])
                api = ImageApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=30.0)
                sink = TimingSink()
                runner = build_runner(
                    store,
                    api,
                    session,
                    sink,
                    config,
                    schedule=schedule,
                    source=SOURCE,
                    clock=clock or SystemClock(),
                )
                try:
                    await runner.start()
                    for i in range(profile.outage_jobs):
                        await runner.enqueue(ImageRequest(f"outage {i}"), Origin(source=SOURCE))
                    await sink.wait_submitted(profile.outage_jobs, 120.0)
                    start, end = sandbox.start_outage(profile.outage_seconds)
                    # Wait for every task that finishes by the end of the counted window.
                    horizon = end + max_interval
                    awaited = {
                        task.task_id
                        for task in sandbox.tasks.values()
                        if (task.finished_clock or 0.0) <= horizon
                    }
                    real_wait = (horizon - now()) / factor + 60.0
                    async with asyncio.timeout(real_wait):
                        while not awaited <= {a.task_id for a in sink.arrivals.values()}:
                            sink.changed.clear()
                            await sink.changed.wait()
                finally:
                    await runner.stop()
                    await store.close()
    finally:
        await sandbox.stop()

    during = [r for r in sandbox.requests if start <= r.clock < end]
    latencies: list[float] = []
    backlog: list[float] = []
    failed = 0
    for arrival in sink.arrivals.values():
        if not arrival.delivered:
            failed += 1
            continue
        assert arrival.task_id is not None
        finished = sandbox.tasks[arrival.task_id].finished_clock
        if finished is None or finished < start or finished > end + max_interval:
            continue
        # The sink's real arrival time, on the sandbox's clock.
        delivered = now() - (time.monotonic() - arrival.at) * factor
        latencies.append(delivered - max(finished, end))
        if finished < end:
            backlog.append(delivered)
    return OutageResult(
        jobs=profile.outage_jobs,
        outage_seconds=profile.outage_seconds,
        requests_during=len(during),
        latencies=latencies,
        backlog_delivered=backlog,
        failed=failed,
        max_interval=max_interval,
    )
