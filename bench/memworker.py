"""`python -m bench.memworker`: the measured process of the memory scenario (see bench/memory.py).

`image`: the job runner delivers one finished job whose result is a huge image, through the same
steps as the bot (safe fetch, pixel check, then the Discord sink's fit to a 10 MiB upload limit), and
reports its peak resident memory and what the member would get. `answer`: one status poll whose answer
never stops coming. Each run is a fresh process, so its peak is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bench.loadworker import peak_rss_mb
from bot.adapters.image_api import ImageApi, MalformedAnswerError
from bot.adapters.media import fit_to_limit_in_pool
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.image_file import ImageFile
from bot.core.models import ImageRequest, Job, Origin, Stage
from bot.core.runner import DeliveryReceipt, RunnerConfig
from bot.core.schedule import PollSchedule
from bot.ops.runner_wiring import build_runner

UPLOAD_LIMIT = 10 * 1024 * 1024  # a server without boosts
SOURCE = "bench-memory"


@dataclass
class UploadingSink:
    """Does with each image what bot/discord/sink.py does before an upload, and notes the outcome."""

    got: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None:
        return None

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        for image in images:
            if image.data is None:
                self.got.append(f"a message: {image.error}")
                continue
            fitted = await fit_to_limit_in_pool(image.data, image.content_type, UPLOAD_LIMIT)
            if fitted is None:
                self.got.append("a link: too large to upload")
                continue
            with Image.open(io.BytesIO(fitted.data)) as shown:
                self.got.append(f"an image of {shown.size[0]}x{shown.size[1]} ({len(fitted.data)} bytes)")
        self.done.set()
        return DeliveryReceipt("bench")

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        self.got.append(f"a failure: {reason}")
        self.done.set()
        return DeliveryReceipt("bench")


async def deliver_image(base_url: str, image_host: str) -> dict[str, object]:
    sink = UploadingSink()
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        async with open_session(FetchPolicy.build(base_url, [image_host])) as session:
            store = await Store.open(Path(tmp) / "mem.db")
            api = ImageApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=30.0)
            # The first poll at once: what is measured is the delivery, not the wait for the poll.
            schedule = PollSchedule(min_interval=0.1, first_poll=0.1)
            runner = build_runner(store, api, session, sink, RunnerConfig(), schedule=schedule, source=SOURCE)
            started = time.monotonic()
            try:
                await runner.start()
                await runner.enqueue(ImageRequest("a huge image"), Origin(source=SOURCE))
                await asyncio.wait_for(sink.done.wait(), 120.0)
            finally:
                await runner.stop()
                await store.close()
    return {"rss_peak_mb": peak_rss_mb(), "seconds": time.monotonic() - started, "member_got": sink.got}


async def poll_endless(base_url: str) -> dict[str, object]:
    async with open_session(FetchPolicy.build(base_url)) as session:
        api = ImageApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=120.0)
        started = time.monotonic()
        try:
            await api.poll("huge-answer")
            outcome = "read whole"
        except MalformedAnswerError as exc:
            outcome = f"refused: {exc.reason}"
    return {"rss_peak_mb": peak_rss_mb(), "seconds": time.monotonic() - started, "outcome": outcome}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memworker", description=__doc__)
    parser.add_argument("mode", choices=("image", "answer"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--image-host", default="")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.base_url.startswith("http://127.0.0.1:"):
        print("the memory worker only talks to 127.0.0.1", file=sys.stderr)
        return 2
    if args.mode == "image":
        figures = asyncio.run(deliver_image(args.base_url, args.image_host))
    else:
        figures = asyncio.run(poll_endless(args.base_url))
    args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
