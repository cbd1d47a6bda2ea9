"""`python -m bot imagine`: the same API client and job runner, from a terminal, into a file.

Everything is checked before the request is sent (it is billed): the prompt, the output path and
every `--ref` link. Progress goes to stderr, the written path(s) to stdout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import TextIO

import aiohttp

from bot.adapters.image_api import MAX_REFERENCE_IMAGES
from bot.adapters.media import ImageFile
from bot.adapters.reference_check import reference_problem
from bot.adapters.safe_fetch import open_session
from bot.adapters.store import open_store
from bot.core import messages
from bot.core.clock import Clock
from bot.core.models import ImageRequest, Job, Origin, Stage
from bot.core.policy.validation import InputRefused, validate_request
from bot.core.runner import DeliveryReceipt, RunnerConfig
from bot.core.texts import from_stored, render
from bot.ops.config import Settings
from bot.ops.runner_wiring import build_runner

log = logging.getLogger(__name__)

# How long past the job's own time limit to wait for its outcome before giving up: the runner ends
# every job by then, so this only guards against a bug leaving the terminal waiting forever.
OUTCOME_GRACE = 300.0


class FileSink:
    """Writes the finished image(s) to a file and reports progress on a terminal stream.

    It never raises: a failed write is reported, the image is rescued into a temporary file (it has
    been paid for), and the command ends either way."""

    def __init__(self, out: Path, stream: TextIO = sys.stderr) -> None:
        self.out = out
        self.stream = stream
        self.done = asyncio.Event()
        self.written: list[Path] = []
        self.rescued: list[Path] = []
        self.error: str | None = None

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed terminal must not fail the job
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
        try:
            for index, image in enumerate(images):
                if image.data is None:
                    self._say(f"image {index + 1} could not be downloaded: {image.error}")
                    continue
                await self._save(self._target(index, image), image)
            if self.written:
                self._say(f"done in {messages.duration(elapsed)}")
            elif not self.rescued:
                self.error = "the image could not be downloaded"
                self._say(f"failed: {self.error}")
        except Exception:
            # A bug, not a full disk (that is handled above): log it once, but never hand the runner
            # an error to retry, so that the command ends.
            log.exception("job %s: saving the image failed", job.id)
            self.error = "the image could not be saved"
        finally:
            self.done.set()
        return DeliveryReceipt("file")

    async def _save(self, target: Path, image: ImageFile) -> None:
        assert image.data is not None
        try:
            await asyncio.to_thread(_write, target, image.data)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            try:
                rescued = await asyncio.to_thread(_write_temporary, image.data, target.suffix or ".png")
            except OSError as second:
                self._say(
                    f"could not write {target} ({why}), nor a temporary copy "
                    f"({second.strerror or type(second).__name__}): the image is lost"
                )
                self.error = "the image could not be saved"
                return
            self._say(f"could not write {target} ({why}); the image was saved to {rescued} instead")
            self.rescued.append(rescued)
            return
        self.written.append(target)

    async def find_delivery(self, job: Job) -> DeliveryReceipt | None:
        return None  # nothing to look up: an earlier process's output is not visible from here

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        self.error = render(None, from_stored(reason))  # the terminal reads English
        self._say(f"failed: {self.error}")
        self.done.set()
        return DeliveryReceipt("terminal")


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary name and rename, so the path never holds half an image."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_temporary(data: bytes, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(prefix="imagine-", suffix=suffix)
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    return Path(name)


def output_problem(out: Path) -> str | None:
    """None if an image can be written at `out`; else why not. Missing parent folders are created
    (like `mkdir -p`), and an existing file will be replaced. Blocking: call it in a thread."""
    if out.is_dir():
        return f"--out {out} is a folder; give a file name, e.g. {out / 'image.png'}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--out {out}: the folder {out.parent} cannot be created ({exc.strerror or exc})"
    existed = out.exists()
    try:
        # Opening for append proves the path writable without touching an existing file's content.
        with out.open("ab"):
            pass
    except OSError as exc:
        return f"--out {out} cannot be written ({exc.strerror or exc})"
    if not existed:
        out.unlink(missing_ok=True)
    return None


async def references_problems(session: aiohttp.ClientSession, refs: list[str], max_bytes: int) -> list[str]:
    """Every `--ref` link read as the API will read it: reachable, an image, within the size limit."""
    problems = await asyncio.gather(*(reference_problem(session, url, max_bytes=max_bytes) for url in refs))
    return [f"--ref {url} {problem}" for url, problem in zip(refs, problems, strict=True) if problem]


async def run_imagine(
    settings: Settings,
    prompt: str,
    aspect_ratio: str | None,
    refs: list[str],
    out: Path,
    *,
    stream: TextIO = sys.stderr,
    stdout: TextIO = sys.stdout,
    clock: Clock | None = None,
) -> int:
    """Exit code: 0 with the image written at `out`, 1 when the job failed or the image could only
    be saved elsewhere, 2 on bad input (nothing was sent)."""
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
    problem = await asyncio.to_thread(output_problem, out)
    if problem is not None:
        print(problem, file=stream)
        return 2
    request = ImageRequest(request.prompt, request.aspect_ratio, tuple(refs))

    sink = FileSink(out, stream)
    async with open_session(settings.fetch_policy()) as session:
        if refs:
            problems = await references_problems(session, refs, settings.max_attachment_bytes)
            if problems:
                print("\n".join(problems), file=stream)
                return 2
        store = await open_store(settings)
        api = settings.image_api(session)
        runner = build_runner(
            store,
            api,
            session,
            sink,
            RunnerConfig(
                time_limit=settings.job_time_limit,
                outage_queue_limit=settings.outage_queue_limit,
                max_result_bytes=settings.max_result_bytes,
                status_update_interval=0,
                delivery_deadline=settings.delivery_timeout,
                max_result_pixels=settings.max_result_pixels,
            ),
            schedule=settings.poll_schedule(),
            # Its own source: this run must not pick up jobs of the bot or of another terminal.
            source=f"cli:{secrets.token_hex(4)}",
            clock=clock,
        )
        try:
            await runner.start()
            await runner.enqueue(request, Origin(source=runner.source))
            try:
                await asyncio.wait_for(sink.done.wait(), settings.job_time_limit + OUTCOME_GRACE)
            except TimeoutError:
                print("failed: no outcome came in time; giving up waiting", file=stream)
        finally:
            await runner.stop()
            await store.close()
    for path in (*sink.written, *sink.rescued):
        print(path, file=stdout, flush=True)
    return 0 if sink.written and not sink.rescued and sink.error is None else 1
