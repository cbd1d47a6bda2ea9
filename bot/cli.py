"""`python -m bot imagine`: the same API client and job runner, from a terminal, into a file."""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path
from typing import TextIO

import aiohttp

from bot import messages
from bot.api import MAX_REFERENCE_IMAGES, ImageApi
from bot.clock import Clock
from bot.config import Settings
from bot.delivery import ImageFile
from bot.jobs import DeliveryReceipt, JobRunner, RunnerConfig
from bot.models import ImageRequest, Job, Origin, Stage
from bot.store import Store
from bot.validation import InputRefused, validate_request


class FileSink:
    """Writes the finished image(s) to a file and reports progress on a terminal stream."""

    def __init__(self, out: Path, stream: TextIO = sys.stderr) -> None:
        self.out = out
        self.stream = stream
        self.done = asyncio.Event()
        self.written: list[Path] = []
        self.error: str | None = None

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None:
        self._say(
            f"[{messages.duration(elapsed):>7}] {stage.value}"
            + (f" (task {job.task_id})" if job.task_id else "")
        )

    def _target(self, index: int, image: ImageFile) -> Path:
        if index == 0:
            return self.out
        return self.out.with_name(f"{self.out.stem}-{index + 1}{self.out.suffix or '.' + image.extension}")

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        for index, image in enumerate(images):
            if image.data is None:
                self._say(f"could not download {image.url}: {image.error}")
                continue
            target = self._target(index, image)
            await asyncio.to_thread(_write, target, image.data)
            self.written.append(target)
        if self.written:
            self._say(f"done in {messages.duration(elapsed)}: " + ", ".join(str(p) for p in self.written))
        else:
            self.error = "the image could not be downloaded"
        self.done.set()
        return DeliveryReceipt("file")

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        self.error = reason
        self._say(f"failed: {reason}")
        self.done.set()
        return DeliveryReceipt("terminal")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def run_imagine(
    settings: Settings,
    prompt: str,
    aspect_ratio: str | None,
    refs: list[str],
    out: Path,
    *,
    stream: TextIO = sys.stderr,
    clock: Clock | None = None,
) -> int:
    """Exit code: 0 with an image written, 1 when the job failed, 2 on bad input."""
    if len(refs) > MAX_REFERENCE_IMAGES:
        print(f"at most {MAX_REFERENCE_IMAGES} --ref images", file=stream)
        return 2
    try:
        request = validate_request(
            prompt, aspect_ratio, [], max_attachment_bytes=settings.max_attachment_bytes
        )
    except InputRefused as refusal:
        print(str(refusal), file=stream)
        return 2
    bad = [r for r in refs if not r.startswith(("http://", "https://"))]
    if bad:
        print(f"--ref must be an http(s) URL: {bad[0]}", file=stream)
        return 2
    request = ImageRequest(request.prompt, request.aspect_ratio, tuple(refs))

    sink = FileSink(out, stream)
    async with aiohttp.ClientSession() as session:
        store = await Store.open(settings.database_path)
        api = ImageApi(
            session,
            settings.base_url,
            settings.api_key.reveal(),
            settings.model,
            timeout=settings.request_timeout,
        )
        runner = JobRunner(
            store,
            api,
            session,
            sink,
            RunnerConfig(
                time_limit=settings.job_time_limit,
                outage_queue_limit=settings.outage_queue_limit,
                max_result_bytes=settings.max_result_bytes,
                status_update_interval=0,
            ),
            schedule=settings.poll_schedule(),
            # Its own source: this run must not pick up jobs of the bot or of another terminal.
            source=f"cli:{secrets.token_hex(4)}",
            clock=clock,
        )
        try:
            await runner.start()
            await runner.enqueue(request, Origin(source=runner.source))
            await sink.done.wait()
        finally:
            await runner.stop()
            await store.close()
    return 0 if sink.written else 1
