"""Many jobs in flight in one process: event-loop lag and peak memory of the runner's process.

Three processes: this one only orchestrates; the sandbox API runs as `python -m bot.sandbox` (its CPU
is not the runner's), and the measured runner runs as `python -m bench.loadworker`, a fresh process
whose peak memory no other scenario inflates. Real time, no scaling: load per second is what a bot
with this many jobs in flight would see. The jobs are submitted in one burst, so the first polls of
many jobs fall due together, like after a restart (the runner polls every running job at once):
the window holds that wave, which is harder on the loop than a steady trickle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.mix import HIGH, LOW
from bench.profiles import Profile

REPO = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class LoopLagResult:
    worker: dict[str, float]

    def figures(self) -> dict[str, float | None]:
        w = self.worker
        return {
            "loop_lag_p99_ms_1000": w["loop_lag_p99_ms"],
            "rss_mb_1000": w["rss_peak_mb"],
            "loop_lag_p50_ms": w["loop_lag_p50_ms"],
            "loop_lag_max_ms": w["loop_lag_max_ms"],
            "loop_intake_lag_p99_ms": w["intake_lag_p99_ms"],
            "loop_intake_s": w["intake_seconds"],
            "loop_jobs_in_flight": w["jobs_in_flight"],
            "loop_polls_per_s": w["polls_per_second"],
            "loop_deliveries_per_s": w["deliveries_per_second"],
            "loop_failed_jobs": w["failed_jobs"],
        }


@contextlib.asynccontextmanager
async def sandbox_process(seed: int) -> AsyncIterator[str]:
    """Start the sandbox on a free port of 127.0.0.1 and yield its base URL; stop it afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.server",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--duration-range",
        str(LOW),
        str(HIGH),
        "--seed",
        str(seed),
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    drain: asyncio.Task[None] | None = None
    try:
        assert process.stderr is not None
        base_url = await asyncio.wait_for(_read_base_url(process.stderr), START_TIMEOUT)
        # Keep reading its log, or a full pipe would one day stall the sandbox.
        drain = asyncio.create_task(_discard(process.stderr))
        yield base_url
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10.0)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain


async def _read_base_url(stream: asyncio.StreamReader) -> str:
    while line := await stream.readline():
        match = LISTENING.search(line.decode(errors="replace"))
        if match:
            return match.group(1)
    raise RuntimeError("the sandbox process exited before it was listening")


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def run_loop_lag(profile: Profile) -> LoopLagResult:
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        out = Path(tmp) / "worker.json"
        async with sandbox_process(profile.seed) as base_url:
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.loadworker",
                "--base-url",
                base_url,
                "--jobs",
                str(profile.loop_jobs),
                "--seconds",
                str(profile.loop_seconds),
                "--seed",
                str(profile.seed),
                "--out",
                str(out),
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            # Intake of many jobs, the window, and the runner's shutdown grace, with room to spare.
            limit = profile.loop_seconds + 180.0
            try:
                output, _ = await asyncio.wait_for(worker.communicate(), limit)
            except TimeoutError:
                worker.kill()
                await worker.wait()
                raise RuntimeError(f"the load worker did not finish within {limit:.0f} s") from None
        if worker.returncode != 0 or not out.exists():
            tail = output.decode(errors="replace")[-2000:]
            raise RuntimeError(f"the load worker failed (exit {worker.returncode}):\n{tail}")
        return LoopLagResult(json.loads(out.read_text()))
