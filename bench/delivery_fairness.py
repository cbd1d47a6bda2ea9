"""Delivery fairness: how long a job whose image is on a fast host takes while eight other jobs' host
sends a byte a second (each with the default 120 s delivery deadline).

Method. One runner, the default eight delivery slots. First the fast job alone, `fairness_rounds`
times: the time from `enqueue` to its image reaching the sink (a submit, a poll or two of a task that
finishes at once, the download and the sink) is the baseline. Then eight jobs whose result link is on
a trickling host, on 127.0.0.1; once their downloads have begun, the fast job again, the same number
of times. Before the slots were shared per host, the trickling jobs took all eight and the fast one
waited for a slot (5.2 s in the report of issue 18, up to the 120 s deadline in general); now one
host holds at most half the slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bench.profiles import Profile
from bench.recording_sink import TimingSink
from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.models import ImageRequest, Origin
from bot.core.runner import JobRunner, RunnerConfig
from bot.core.schedule import PollSchedule
from bot.ops.runner_wiring import build_runner
from sandbox.server import Sandbox, SandboxConfig

ORIGIN = Origin(source="bench")
SLOW_JOBS = 8
CONFIG = RunnerConfig(status_update_interval=0.0, shutdown_grace=0.2, delivery_concurrency=8)
SCHEDULE = PollSchedule(min_interval=0.05, max_interval=0.5, first_poll=0.05)
# The first bytes of a PNG, then one more a second: never a whole image within the deadline.
PNG_START = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class FairnessResult:
    alone_s: list[float]
    beside_slow_s: list[float]
    slow_started: int

    def figures(self) -> dict[str, float | None]:
        return {
            "delivery_fast_host_delay_s": max(0.0, max(self.beside_slow_s) - min(self.alone_s)),
            "delivery_fast_host_alone_s": max(self.alone_s),
            "delivery_fast_host_beside_slow_s": max(self.beside_slow_s),
            "delivery_slow_downloads_running": float(self.slow_started),
        }


@contextlib.asynccontextmanager
async def trickling_host() -> AsyncIterator[tuple[str, list[str]]]:
    """A result host on 127.0.0.1 that sends a byte a second; yields its origin and the paths asked."""
    asked: list[str] = []

    async def trickle(request: web.Request) -> web.StreamResponse:
        asked.append(request.path_qs)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(PNG_START)
            while True:
                await asyncio.sleep(1.0)
                await response.write(b"\0")
        return response

    app = web.Application()
    app.router.add_get("/{name}", trickle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}", asked
    finally:
        await runner.cleanup()


async def _fast_job(runner: JobRunner, sink: TimingSink, n: int) -> float:
    started = time.monotonic()
    job = await runner.enqueue(ImageRequest(f"fast {n}"), ORIGIN)
    async with asyncio.timeout(60):
        while job.id not in sink.arrivals:
            sink.changed.clear()
            await sink.changed.wait()
    arrival = sink.arrivals[job.id]
    if not arrival.delivered:
        raise RuntimeError("the fast job's image did not arrive")
    return arrival.at - started


async def _slow_jobs_under_way(runner: JobRunner, asked: list[str]) -> None:
    """Until every slow job is downloading or waiting for a delivery slot (two sources, no one event)."""
    async with asyncio.timeout(30):
        while True:
            if asked and len(asked) + runner.deliverer.pool.waiting >= SLOW_JOBS:
                return
            await asyncio.sleep(0.02)


async def run_delivery_fairness(profile: Profile) -> FairnessResult:
    sandbox = Sandbox(SandboxConfig(duration=0.0, seed=profile.seed))
    base_url = await sandbox.start()
    try:
        async with trickling_host() as (slow_origin, asked):
            policy = FetchPolicy.build(base_url, [slow_origin])
            with tempfile.TemporaryDirectory() as folder:
                async with open_session(policy) as session:
                    store = await Store.open(Path(folder) / "bench.db")
                    api = ImageApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=30.0)
                    sink = TimingSink()
                    runner = build_runner(
                        store, api, session, sink, CONFIG, schedule=SCHEDULE, source="bench"
                    )
                    try:
                        await runner.start()
                        rounds = range(profile.fairness_rounds)
                        alone = [await _fast_job(runner, sink, n) for n in rounds]
                        for n in range(SLOW_JOBS):
                            link = f"http://{slow_origin}/slow-{n}.png"
                            sandbox.force_next("completed", result={"images": [link]})
                            await runner.enqueue(ImageRequest(f"slow {n}"), ORIGIN)
                        await _slow_jobs_under_way(runner, asked)
                        beside = [await _fast_job(runner, sink, n) for n in rounds]
                        started = len(asked)
                    finally:
                        await runner.stop()
                        await store.close()
    finally:
        await sandbox.stop()
    return FairnessResult(alone, beside, started)
