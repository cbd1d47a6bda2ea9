"""`python -m bot imagine`: the same API client and job runner, from a terminal, into a file.

Everything is checked before the request is sent (it is billed): the prompt, the output path, every
`--ref` link, and that the image API answers at all (a wrong address is named in seconds, not after
the bot's five-minute outage wait). Progress goes to stderr, the written path(s) to stdout (or the
image itself, with `--out -`). Files are written as every operator output is (bot/ops/output_file.py)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import secrets
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

import aiohttp
import yarl
from PIL import Image

from bot.adapters.reference_check import reference_problem
from bot.adapters.safe_fetch import open_session
from bot.adapters.store import Store, open_store
from bot.core import messages
from bot.core.clock import Clock
from bot.core.image_contract import MAX_REFERENCE_IMAGES
from bot.core.image_file import ImageFile
from bot.core.models import ImageRequest, Job, JobStatus, Origin, Stage
from bot.core.policy.quotas import MAX_COUNT
from bot.core.policy.validation import InputRefused, validate_request
from bot.core.runner import MSG_OUTAGE, MSG_UNAVAILABLE, DeliveryReceipt
from bot.core.texts import Text, from_stored, render
from bot.ops import wiring
from bot.ops.config import Settings
from bot.ops.output_file import OutputRefused, database_files, writable_problem, write_output
from bot.ops.runner_wiring import build_runner

log = logging.getLogger(__name__)

# How long past the job's own time limit to wait for its outcome before giving up: the runner ends
# every job by then, so this only guards against a bug leaving the terminal waiting forever.
OUTCOME_GRACE = 300.0
# A TCP connection to the API's host either opens within this or the address is wrong or unreachable.
CONNECT_DEADLINE = 5.0
# While nothing new happens (a long render, a failing service), a line this often says what is awaited.
HEARTBEAT = 5.0
# The format follows the extension; a name without one gets the image's own.
OUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
STDOUT = "-"
OUT_HELP = (
    "where to write the image (default: imagine-YYYYMMDD-HHMMSS.png in this folder). The format follows"
    " the extension: .png, .jpg/.jpeg or .webp; a name without one gets the image's own (art → art.png);"
    " more images go to NAME-2.png and so on (with --count, image N of the request is NAME-N.png, the"
    " first NAME.png). An existing file is kept unless --force; a symlink is written through to its"
    " file; - writes the image to standard output"
)
COUNT_HELP = "how many images (1-4): one task each at the image API, written as --out says"


def default_out(now: float | None = None) -> Path:
    return Path(time.strftime("imagine-%Y%m%d-%H%M%S.png", time.localtime(now)))


@dataclass
class Output:
    """Where the image(s) go: a file (and its format), or standard output."""

    path: Path | None  # None: standard output
    force: bool = False
    protected: list[Path] = field(default_factory=list)

    @property
    def format(self) -> str | None:
        return OUT_FORMATS.get(self.path.suffix.lower()) if self.path and self.path.suffix else None

    def target(self, index: int, extension: str) -> Path:
        assert self.path is not None
        suffix = self.path.suffix or f".{extension}"
        stem = self.path.name[: -len(self.path.suffix)] if self.path.suffix else self.path.name
        return self.path.with_name(f"{stem}{suffix}" if index == 0 else f"{stem}-{index + 1}{suffix}")

    def task_target(self, task: int, image: int, count: int, extension: str) -> Path:
        """Where image `image` of the request's task `task` goes (both 0-based): for a request of
        several tasks, task N's image is NAME-N (the first NAME), and a task's further images, rare,
        NAME-N-2 and so on; for one task, `target`."""
        if count == 1:
            return self.target(image, extension)
        first = self.target(task, extension)
        if image == 0:
            return first
        return first.with_name(f"{first.stem}-{image + 1}{first.suffix}")

    def problem(self, count: int = 1) -> str | None:
        """Why the image(s) could not be written as asked, before anything is sent. Blocking."""
        if self.path is None:
            return None
        if self.path.suffix and self.format is None:
            return (
                f"--out {self.path}: the format follows the extension, and {self.path.suffix} is not one"
                " of .png, .jpg, .jpeg, .webp (or give no extension: the image's own)"
            )
        # A folder or a device named without an extension (/dev/full) is meant as it is, not as a
        # name to add .png to: it is checked, and refused, itself.
        special = self.path.exists() and not self.path.is_file()
        targets = [self.path] if special else [self.target(task, "png") for task in range(count)]
        for target in targets:
            problem = writable_problem(target, protected=self.protected, overwrite=self.force)
            if problem:
                return f"--out {problem}"
        return None


def encode(data: bytes, image_format: str | None) -> bytes:
    """The image in `image_format` (a Pillow format name), or as it came when that is None or the same."""
    if image_format is None:
        return data
    with Image.open(io.BytesIO(data)) as image:
        if image.format == image_format:
            return data
        converted = (
            image.convert("RGB") if image_format == "JPEG" and image.mode not in ("RGB", "L") else image
        )
        buffer = io.BytesIO()
        converted.save(buffer, image_format, **({"quality": 92} if image_format != "PNG" else {}))
        return buffer.getvalue()


# Runner texts written for Discord members, said the terminal's way.
TERMINAL_REASONS = {
    MSG_OUTAGE.msgid: "the image service kept failing past OUTAGE_QUEUE_LIMIT; the request was never"
    " sent, so nothing is billed",
    MSG_UNAVAILABLE.msgid: "the image service refused the key; check MOUNTSEA_API_KEY and the account's"
    " balance",
}


class FileSink:
    """Writes the finished image(s) and reports progress on a terminal stream.

    It never raises: a failed write is reported, the image is rescued into a temporary file (it has
    been paid for), and the command ends either way."""

    def __init__(
        self, output: Output, stream: TextIO = sys.stderr, image_out: BinaryIO | None = None, api: str = ""
    ) -> None:
        self.output = output
        self.stream = stream
        self.image_out = image_out
        self.api = api
        self.done = asyncio.Event()
        self.written: list[Path] = []
        self.rescued: list[Path] = []
        self.error: str | None = None
        self.task_id: str | None = None
        self.stage: Stage | None = None
        self.said_at = time.monotonic()
        # Resolved now: the folder the rescue goes to is the one TMPDIR named at the start.
        self.rescue_folder = tempfile.gettempdir()
        # A request of several tasks: each job's place in it (0-based), and how many have ended.
        self.count = 1
        self.places: dict[int, int] = {}
        self.ended = 0
        self.failed = 0

    def _end_one(self) -> None:
        self.ended += 1
        if self.ended >= self.count:
            self.done.set()

    def _name(self, job: Job) -> str:
        return f"image {self.places.get(job.id, 0) + 1}: " if self.count > 1 else ""

    def _say(self, text: str) -> None:
        self.said_at = time.monotonic()
        with contextlib.suppress(OSError, ValueError):  # a closed terminal must not fail the job
            print(text, file=self.stream, flush=True)

    def describe(self, stage: Stage) -> str:
        task = f" (task {self.task_id})" if self.task_id else ""
        if stage is Stage.SERVICE_DOWN:
            return (
                f"waiting for the image service at {self.api}: it is answering errors (5xx) or timing out;"
                " waiting as the bot does, up to OUTAGE_QUEUE_LIMIT (Ctrl-C to give up: nothing is sent yet)"
            )
        return f"{stage.value}{task}"

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None:
        self.task_id = job.task_id or self.task_id
        self.stage = stage
        self._say(f"[{messages.duration(elapsed):>7}] {self.describe(stage)}")

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        downloaded = 0
        written, rescued = len(self.written), len(self.rescued)
        task = self.places.get(job.id, 0)
        try:
            for index, image in enumerate(images):
                if image.data is None:
                    why = render(None, image.error) if image.error else "no reason given"
                    self._say(f"image {index + 1} could not be downloaded: {why}")
                    continue
                downloaded += 1
                if self.output.path is None:
                    self._to_stdout(index, image.data)
                    continue
                target = self.output.task_target(task, index, self.count, image.extension)
                await self._save(target, image.data)
            if len(self.written) > written:
                self._say(f"{self._name(job)}done in {messages.duration(elapsed)}")
            elif not downloaded:
                self.error = "the image could not be downloaded"
                self._say(f"{self._name(job)}failed: {self.error}")
            elif len(self.rescued) == rescued:
                self.error = self.error or "the image could not be saved"
                self._say(f"{self._name(job)}failed: {self.error} (it was made and downloaded)")
        except Exception:
            # A bug, not a full disk (that is handled above): log it once, but never hand the runner
            # an error to retry, so that the command ends.
            log.exception("job %s: saving the image failed", job.id)
            self.error = "the image could not be saved"
        finally:
            self._end_one()
        return DeliveryReceipt("file")

    def _to_stdout(self, index: int, data: bytes) -> None:
        if index > 0:
            self._say(f"image {index + 1} not written: --out - takes the first image only")
            return
        assert self.image_out is not None
        try:
            self.image_out.write(data)
            self.image_out.flush()
        except OSError as error:
            self.error = f"could not write to standard output ({error.strerror or error})"
            self._say(f"failed: {self.error}")
            return
        self.written.append(Path(STDOUT))

    async def _save(self, target: Path, data: bytes) -> None:
        try:
            encoded = await asyncio.to_thread(encode, data, self.output.format)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            why = f"cannot convert it to {self.output.format} ({error})"
            encoded = None
        if encoded is not None:
            try:
                await asyncio.to_thread(
                    write_output,
                    target,
                    encoded,
                    protected=self.output.protected,
                    overwrite=self.output.force,
                )
            except OutputRefused as refusal:
                why = str(refusal)
            except OSError as error:
                why = error.strerror or type(error).__name__
            else:
                self.written.append(target)
                return
        rescue = encoded or data
        try:
            rescued = await asyncio.to_thread(_write_temporary, rescue, target.suffix, self.rescue_folder)
        except OSError as second:
            self.error = "the image could not be saved"
            self._say(
                f"could not write {target} ({why}), nor a temporary copy in {self.rescue_folder} "
                f"({second.strerror or type(second).__name__}): the image is lost"
            )
            return
        self._say(f"could not write {target} ({why}); the image was saved to {rescued} instead")
        self.rescued.append(rescued)

    async def find_delivery(self, job: Job) -> DeliveryReceipt | None:
        return None  # nothing to look up: an earlier process's output is not visible from here

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        stored = from_stored(reason)
        terminal = TERMINAL_REASONS.get(stored.msgid) if isinstance(stored, Text) else None
        self.error = terminal or render(None, stored)  # the terminal reads English
        self.failed += 1
        self._say(f"{self._name(job)}failed: {self.error}")
        self._end_one()
        return DeliveryReceipt("terminal")


def _write_temporary(data: bytes, suffix: str, folder: str) -> Path:
    handle, name = tempfile.mkstemp(prefix="imagine-", suffix=suffix or ".png", dir=folder)
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    return Path(name)


def reference_refusal(ref: str) -> str | None:
    """Why a --ref cannot be sent as it is (None for an http(s) URL). Blocking (it looks at files)."""
    if ref.startswith(("http://", "https://")):
        return None
    if os.path.exists(ref):
        return (
            f"--ref {ref} is a file on this computer: the image API downloads every reference itself,"
            " so it needs an http(s) URL it can reach (put the image online first)"
        )
    return f"--ref must be an http(s) URL: {ref}"


async def references_problems(session: aiohttp.ClientSession, refs: list[str], max_bytes: int) -> list[str]:
    """Every `--ref` link read as the API will read it: reachable, an image, within the size limit."""
    problems = await asyncio.gather(*(reference_problem(session, url, max_bytes=max_bytes) for url in refs))
    return [f"--ref {url} {problem}" for url, problem in zip(refs, problems, strict=True) if problem]


async def api_unreachable(base_url: str, deadline: float = CONNECT_DEADLINE) -> str | None:
    """None if a connection to the API's host opens; else one line naming the address and why not."""
    url = yarl.URL(base_url)
    if not url.host or url.port is None:
        return f"MOUNTSEA_BASE_URL {base_url!r} has no host to connect to"
    try:
        async with asyncio.timeout(deadline):
            _, writer = await asyncio.open_connection(url.host, url.port)
    except TimeoutError:
        return (
            f"no answer from the image API at {base_url} within {deadline:g} s (no route to it, or a"
            " firewall dropping the connection); check MOUNTSEA_BASE_URL"
        )
    except OSError as error:
        # asyncio words a refused connection "Connect call failed (…)"; the errno says it plainly.
        code = None if isinstance(error, socket.gaierror) else error.errno
        why = os.strerror(code) if code else (error.strerror or str(error))
        return f"cannot reach the image API at {base_url} ({why}); check MOUNTSEA_BASE_URL"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _heartbeat(sink: FileSink, started: float) -> None:
    """A line every HEARTBEAT seconds of silence, so a long wait never looks like a hang."""
    while True:
        await asyncio.sleep(1.0)
        if sink.stage is not None and time.monotonic() - sink.said_at >= HEARTBEAT:
            elapsed = messages.duration(time.monotonic() - started)
            sink._say(f"[{elapsed:>7}] still {sink.describe(sink.stage)}")


async def _say_what_was_submitted(store: Store, job: Job, sink: FileSink, stream: TextIO) -> None:
    """Ctrl-C: what the image service has from us, so that a billed task is never a surprise."""
    current: Job | None = None
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            current = await store.jobs.get(job.id)
    task_id = (current.task_id if current else None) or sink.task_id
    status = current.status if current else None
    if task_id:
        text = (
            f"interrupted: task {task_id} was submitted to {sink.api} and may still run and be billed;"
            " its image will not be saved"
        )
    elif status is JobStatus.QUEUED:
        text = "interrupted before the request was sent: nothing is billed"
    else:
        text = (
            f"interrupted while the request was being sent to {sink.api}: it may have arrived, and may be"
            " billed (no task id came back)"
        )
    with contextlib.suppress(OSError, ValueError):
        print(text, file=stream, flush=True)


async def run_imagine(
    settings: Settings,
    prompt: str,
    aspect_ratio: str | None,
    refs: list[str],
    out: Path | None,
    *,
    force: bool = False,
    stream: TextIO = sys.stderr,
    stdout: TextIO = sys.stdout,
    clock: Clock | None = None,
    count: int = 1,
) -> int:
    """Exit code: 0 with every image written, 1 when a job failed, the API could not be reached or an
    image could only be saved elsewhere, 2 on bad input (nothing was sent). `count` images are made,
    one task each, sent at once."""
    if not 1 <= count <= MAX_COUNT:
        print(f"--count must be from 1 to {MAX_COUNT}", file=stream)
        return 2
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
    for ref in refs:
        if (refused := await asyncio.to_thread(reference_refusal, ref)) is not None:
            print(refused, file=stream)
            return 2
    image_out: BinaryIO | None = None
    if out is not None and str(out) == STDOUT:
        if count > 1:
            print(
                "--out - writes one image; with --count, name a file (NAME.png, NAME-2.png, ...)", file=stream
            )
            return 2
        image_out = getattr(stdout, "buffer", None)
        if image_out is None or stdout.isatty():
            print(
                "--out -: standard output is a terminal; redirect it (> image.png) or name a file",
                file=stream,
            )
            return 2
        output = Output(None)
    else:
        protected = database_files(None if settings.database_url else settings.database_path)
        output = Output(out or default_out(), force=force, protected=protected)
    problem = await asyncio.to_thread(output.problem, count)
    if problem is not None:
        print(problem, file=stream)
        return 2
    request = ImageRequest(request.prompt, request.aspect_ratio, tuple(refs))
    return await run_job(
        settings, request, output, image_out, count=count, stream=stream, stdout=stdout, clock=clock
    )


async def run_job(
    settings: Settings,
    request: ImageRequest,
    output: Output,
    image_out: BinaryIO | None,
    *,
    count: int = 1,
    stream: TextIO,
    stdout: TextIO,
    clock: Clock | None,
) -> int:
    """A checked request (`count` images, or a video: `python -m bot animate`) run to its files: its
    references read as the API will read them, the API reached, the jobs run by the bot's own runner."""
    refs = list(request.reference_urls)
    sink = FileSink(output, stream, image_out, api=settings.base_url)
    sink.count = count
    async with open_session(wiring.fetch_policy(settings)) as session:
        if refs:
            problems = await references_problems(session, refs, settings.max_attachment_bytes)
            if problems:
                print("\n".join(problems), file=stream)
                return 2
        unreachable = await api_unreachable(settings.base_url)
        if unreachable is not None:
            print(unreachable, file=stream)
            return 1
        store = await open_store(settings)
        runner = build_runner(
            store,
            wiring.image_api(settings, session),
            session,
            sink,
            wiring.terminal_runner_config(settings),
            schedule=wiring.poll_schedule(settings),
            # Its own source: this run must not pick up jobs of the bot or of another terminal.
            source=f"cli:{secrets.token_hex(4)}",
            clock=clock,
        )
        heartbeat = asyncio.create_task(_heartbeat(sink, time.monotonic()))
        try:
            await runner.start()
            jobs: list[Job] = []
            for place in range(count):  # all sent at once: each submit runs in the background
                job = await runner.enqueue(request, Origin(source=runner.source))
                sink.places[job.id] = place
                jobs.append(job)
            try:
                await asyncio.wait_for(sink.done.wait(), settings.job_time_limit + OUTCOME_GRACE)
            except TimeoutError:
                print("failed: no outcome came in time; giving up waiting", file=stream)
            except asyncio.CancelledError:  # Ctrl-C
                for job in jobs:
                    await _say_what_was_submitted(store, job, sink, stream)
                raise
        finally:
            heartbeat.cancel()
            await runner.stop()
            await store.close()
    if output.path is not None:
        for path in (*sink.written, *sink.rescued):
            print(path, file=stdout, flush=True)
    else:
        for path in sink.rescued:
            print(f"saved to {path}", file=stream, flush=True)
    complete = sink.ended >= count and not sink.failed and len(sink.written) >= count
    return 0 if complete and not sink.rescued and sink.error is None else 1
