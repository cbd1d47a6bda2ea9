"""One process of the multi-process scenario (bench/multiproc.py): a job runner on the shared PostgreSQL,
without Discord (its sink records outcomes), against the sandbox API of the orchestrating process.

    python -m bench.mpworker --name w0 --base-url URL --database-url URL --jobs 333 --lease 10 --log F

Submits `--jobs` jobs, prints "ready", then keeps that many of its own in flight (each outcome it hands
over is replaced at once) until SIGTERM. Every finished poll, submit answer and outcome is appended to
`--log` as it happens (one line each, flushed), so the lines survive a SIGKILL: the orchestrator reads
which process polled which task when, and who delivered what.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bench.lag import LagProbe, probing
from bench.mix import adaptive_schedule_args
from bench.recording_sink import TimingSink
from bot.adapters.image_api import ImageApi, TaskStatus
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.image_file import ImageFile
from bot.core.models import ImageRequest, Job, Origin
from bot.core.runner import DeliveryReceipt, JobRunner, RunnerConfig
from bot.core.schedule import PollSchedule
from bot.ops.runner_wiring import build_runner

SOURCE = "bench-mp"
INTAKE_LIMIT = 120.0
METER_PERIOD = 1.0


class LoggedApi(ImageApi):
    """The real client; each poll is logged with its wall-clock start and end (shared by processes)."""

    log: TextIO

    async def poll(self, task_id: str) -> TaskStatus:
        started = time.time()
        try:
            answer = await super().poll(task_id)
        finally:
            self.log.write(f"P {task_id} {started:.6f} {time.time():.6f}\n")
        if answer.is_final:
            # Monotonic time is the machine's, so the orchestrator's sandbox can tell how long after
            # the task's end this poll saw it: the schedule's overhead.
            self.log.write(f"C {task_id} {time.monotonic():.6f}\n")
        return answer

    async def submit(self, prompt: str, aspect_ratio: str | None, reference_urls: Sequence[str]) -> str:
        task_id = await super().submit(prompt, aspect_ratio, reference_urls)
        self.log.write(f"S {task_id} {time.time():.6f}\n")
        return task_id


class LoggedSink(TimingSink):
    log: TextIO
    posts: TextIO  # the ids this process posted, one a line, apart from the big log: find_delivery
    folder: Path

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        self.log.write(f"D {job.id} {time.time():.6f}\n")
        self.posts.write(f"{job.id}\n")
        return await super().deliver(job, images, elapsed)

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        self.log.write(f"F {job.id} {time.time():.6f}\n")
        return await super().fail(job, reason)

    async def find_delivery(self, job: Job) -> DeliveryReceipt | None:
        """As the bot looks for its post on Discord before posting a taken-over image again: a process
        that died between posting and recording it posted it already. The workers' logs are the
        channel here (every worker writes its posts to the same folder, each before it returns). Read
        in a thread, from the small posts files: reading the poll logs on the event loop stalled the
        survivors of a SIGKILL at 10,000 in flight, as the bot's own look-up never does."""
        found = await asyncio.to_thread(self._posted_by_anyone, str(job.id))
        return DeliveryReceipt("bench") if found else None

    def _posted_by_anyone(self, job_id: str) -> bool:
        return any(job_id in path.read_text().split() for path in self.folder.glob("*.posts"))


async def run(args: argparse.Namespace) -> None:
    log = args.log.open("a", buffering=1)  # line-buffered: every line is out before the next
    store = await Store.open_url(args.database_url, lease=args.lease)
    low, high, first = adaptive_schedule_args()
    if args.interval:
        schedule = PollSchedule(args.interval, args.interval, args.interval)  # a fixed poller
    else:
        schedule = PollSchedule(low, args.poll_max or high, first)
    config = RunnerConfig(shutdown_grace=1.0, concurrency=args.concurrency or RunnerConfig.concurrency)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with open_session(FetchPolicy.build(args.base_url)) as session:
        api = LoggedApi(session, args.base_url, "sandbox-key", "grok-imagine-image", timeout=30.0)
        api.log = log
        sink = LoggedSink()
        sink.log, sink.folder = log, args.log.parent
        sink.posts = args.log.with_suffix(".posts").open("a", buffering=1)
        runner = build_runner(store, api, session, sink, config, schedule=schedule, source=SOURCE)
        try:
            log.write(f"O {store.owner}\n")
            await runner.start()
            for i in range(args.jobs):
                await runner.enqueue(ImageRequest(f"{args.name} {i}"), Origin(source=SOURCE))
            await sink.wait_submitted(args.jobs, max(INTAKE_LIMIT, args.jobs / 10.0))
            print("ready", flush=True)
            async with probing() as probe:
                meter = asyncio.create_task(_meter(log, probe, stop))
                try:
                    await _hold_in_flight(runner, sink, args, stop)
                finally:
                    meter.cancel()
        finally:
            await runner.stop()
            await store.close()
            sink.posts.close()
            log.close()


async def _hold_in_flight(
    runner: JobRunner, sink: TimingSink, args: argparse.Namespace, stop: asyncio.Event
) -> None:
    """Until `stop`, replace every outcome this process hands over with a new job of its own."""
    replaced, next_id = 0, args.jobs
    while not stop.is_set():
        sink.changed.clear()
        ended = len(sink.arrivals)
        for _ in range(ended - replaced):
            await runner.enqueue(ImageRequest(f"{args.name} {next_id}"), Origin(source=SOURCE))
            next_id += 1
        replaced = ended
        waiting = asyncio.ensure_future(sink.changed.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        stopping.cancel()


async def _meter(log: TextIO, probe: LagProbe, stop: asyncio.Event) -> None:
    """Every second: this process's CPU seconds so far (all threads) and its event-loop lag samples
    since the last line, so the orchestrator can cut any window out of the run."""
    seen = 0
    while not stop.is_set():
        await asyncio.sleep(METER_PERIOD)
        samples = probe.samples_ms[seen:]
        seen += len(samples)
        log.write(f"M {time.time():.6f} {time.process_time():.6f} {','.join(f'{s:.2f}' for s in samples)}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mpworker", description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--poll-max", type=float, default=0.0, help="POLL_MAX_INTERVAL (0: the default)")
    parser.add_argument("--interval", type=float, default=0.0, help="poll every N seconds (0: learned)")
    parser.add_argument("--concurrency", type=int, default=0, help="polls in flight at most (0: the default)")
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.base_url.startswith("http://127.0.0.1:"):
        print("the worker only talks to a sandbox on 127.0.0.1", file=sys.stderr)
        return 2
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
