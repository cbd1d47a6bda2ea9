"""Offline stand-in for the Mountsea image API (Grok's ``grok-imagine-image``); the contract it
follows is ``docs/API.md`` in this repository.

It serves the same routes, fields, validation and statuses as the real gateway so that operators can
try the bot without spending credits, tests can drive every failure mode, and a benchmark can run
thousands of tasks.  Task status is computed from the clock when polled (no per-task timers) and
placeholder PNGs are drawn lazily on fetch, so thousands of tasks cost little memory and CPU.

Run it with ``python -m bot sandbox --port 8090`` (or ``python -m bot.sandbox``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import enum
import hashlib
import hmac
import io
import json
import logging
import math
import random
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from PIL import Image, ImageDraw, ImageFont

from bot.adapters.reference_check import reference_problem
from bot.core.video_contract import VIDEO_MODEL
from sandbox.video_route import (
    VideoRequestError,
    VideoSpec,
    validate_video_submission,
    video_result,
    video_spec,
)

log = logging.getLogger(__name__)

ResultShape = Literal["urls", "objects", "data", "b64", "nested", "empty"]
FinalStatus = Literal["completed", "failed", "cancelled", "timeout"]
TaskStatus = Literal["pending", "processing", "completed", "failed", "cancelled", "timeout"]
DurationSampler = Callable[[random.Random], float]

RESULT_SHAPES: Final[tuple[str, ...]] = get_args(ResultShape)
FINAL_STATUSES: Final[tuple[str, ...]] = get_args(FinalStatus)
MODELS: Final[frozenset[str]] = frozenset({"grok-imagine-image"})
MAX_PROMPT_CHARS: Final = 5000
MAX_REFERENCE_IMAGES: Final = 5
ASPECT_RATIO_SIZES: Final[dict[str, tuple[int, int]]] = {
    "1:1": (512, 512),
    "16:9": (768, 432),
    "9:16": (432, 768),
    "3:2": (768, 512),
    "2:3": (512, 768),
}
# The real API sizes edits after the reference images; the sandbox checks them but draws one size.
REFERENCE_IMAGE_SIZE: Final = (512, 512)
# Big noise images are this many times the normal size: 1:1 gives 2048x2048, about 12 MB as PNG.
BIG_IMAGE_SCALE: Final = 4

# Random failures look like what a provider might plausibly answer.
_RANDOM_FAILURES: Final[tuple[tuple[str, int], ...]] = (
    ("The prompt was rejected by the content policy", 400),
    ("Upstream provider error, please retry later", 502),
    ("Image generation failed", 500),
)
_FORCED_FAILURE_DEFAULTS: Final[dict[str, tuple[str, int]]] = {
    "failed": ("Image generation failed (forced by the sandbox)", 500),
    "cancelled": ("The task was cancelled", 499),
    "timeout": ("The task timed out upstream", 504),
}


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET
"""Marks "no raw result given" in :meth:`Sandbox.force_next` (``None`` is a legitimate raw result)."""


def log_uniform(low: float, high: float) -> DurationSampler:
    """A duration sampler whose logarithm is uniform in [log(low), log(high)]: most tasks are quick,
    a long tail is slow, which is how generation latencies tend to look."""
    if not 0 < low <= high:
        raise ValueError(f"log_uniform needs 0 < low <= high, got {low}, {high}")
    log_low, log_high = math.log(low), math.log(high)

    def sample(rng: random.Random) -> float:
        return math.exp(rng.uniform(log_low, log_high))

    return sample


@dataclass
class SandboxConfig:
    """How the sandbox behaves; every default matches a calm, always-successful API."""

    api_key: str = "sandbox-key"
    duration: float = 4.0
    """Seconds (of ``clock``) from submit to the final status, unless ``duration_sampler`` is set."""
    duration_sampler: DurationSampler | None = None
    """Draws each task's duration from the sandbox's seeded ``random.Random``; see :func:`log_uniform`."""
    processing_after: float = 0.25
    """Fraction of the duration a task spends ``pending`` before it turns ``processing``."""
    failure_rate: float = 0.0
    rate_limit_rate: float = 0.0
    """Fraction of API requests (submit and poll) answered 429."""
    retry_after: int = 1
    """``Retry-After`` seconds on randomly rate-limited answers."""
    seed: int | None = None
    result_shape: ResultShape = "urls"
    images_per_task: int = 1
    big_images: bool = False
    check_references: bool = True
    """Download every reference image before accepting a submit, as the real service must, and refuse
    (400) one that cannot be fetched, is not a PNG, JPEG, WebP or GIF, or is over ``max_reference_bytes``."""
    max_reference_bytes: int = 20 * 1024 * 1024
    reference_timeout: float = 10.0
    """Seconds for fetching one reference image, connection and body together."""
    submit_delay: float = 0.0
    """Seconds the submit handler waits after creating the task and before answering."""
    poll_delay: float = 0.0
    """Seconds each poll waits before it is answered: a gateway's round trip (bench/capacity.py)."""
    public_base_url: str | None = None
    """Base of result URLs; by default they are built from the Host of the poll request."""
    clock: Callable[[], float] = time.monotonic
    image_cache_bytes: int = 32 * 1024 * 1024
    request_log_size: int | None = 100_000
    """How many recorded requests to keep (oldest dropped first); ``None`` keeps all."""
    outage_after: float | None = None
    """Seconds (of ``clock``) after start at which an outage begins; ``None``: no outage."""
    outage_for: float = 60.0
    """How long the outage lasts: every request (after it is recorded) answers 503 meanwhile."""

    def __post_init__(self) -> None:
        for name in ("failure_rate", "rate_limit_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not 0.0 <= self.processing_after <= 1.0:
            raise ValueError("processing_after must be between 0 and 1")
        if self.outage_for < 0 or (self.outage_after is not None and self.outage_after < 0):
            raise ValueError("outage_after and outage_for must not be negative")
        if self.duration < 0 or self.submit_delay < 0 or self.retry_after < 0:
            raise ValueError("duration, submit_delay and retry_after must not be negative")
        if self.result_shape not in RESULT_SHAPES:
            raise ValueError(f"result_shape must be one of {', '.join(RESULT_SHAPES)}")
        if self.images_per_task < 1:
            raise ValueError("images_per_task must be at least 1")
        if self.max_reference_bytes < 1 or self.reference_timeout <= 0:
            raise ValueError("max_reference_bytes and reference_timeout must be positive")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    json: Any
    """The parsed JSON body, or ``None`` when there was none or it was not valid JSON."""
    at: float
    """``time.monotonic()`` when the request arrived."""
    clock: float
    """The sandbox's ``config.clock()`` when the request arrived (differs from ``at`` when scaled)."""


@dataclass(frozen=True, slots=True)
class _ForcedOutcome:
    status: FinalStatus | None  # None: the task never finishes
    error_message: str | None
    error_code: int | None
    result: object
    duration: float | None


@dataclass(slots=True)
class SandboxTask:
    task_id: str
    trace_id: str
    prompt: str
    model: str
    aspect_ratio: str | None
    reference_images: tuple[str, ...]
    created_clock: float
    created_wall: datetime
    duration: float
    processing_at: float
    """Clock time the task turns ``processing``."""
    final_status: FinalStatus | None
    """Status once ``duration`` has elapsed; ``None`` means it stays ``processing`` forever."""
    error_message: str | None = None
    error_code: int | None = None
    raw_result: object = UNSET
    """A result returned verbatim instead of the configured shape (set by ``force_next``)."""
    image_count: int = 1
    video: VideoSpec | None = None
    """A video task's clip (POST /xai/videos); None for an image task."""

    @property
    def finished_clock(self) -> float | None:
        return None if self.final_status is None else self.created_clock + self.duration

    def status_at(self, now: float) -> TaskStatus:
        if now < self.processing_at:
            return "pending"
        if self.final_status is None or now < self.created_clock + self.duration:
            return "processing"
        return self.final_status

    @property
    def image_size(self) -> tuple[int, int]:
        if self.reference_images:
            return REFERENCE_IMAGE_SIZE
        return ASPECT_RATIO_SIZES[self.aspect_ratio or "1:1"]


class _ValidationError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Submission:
    prompt: str
    model: str
    aspect_ratio: str | None
    reference_images: tuple[str, ...]


def _validate_submission(body: object) -> _Submission:
    """Applies the documented field rules; raises with the message a 400 answer carries."""
    if not isinstance(body, dict):
        raise _ValidationError("Request body must be a JSON object")
    prompt = body.get("prompt")
    if prompt is None:
        raise _ValidationError("prompt is required")
    if not isinstance(prompt, str):
        raise _ValidationError("prompt must be a string")
    if not prompt.strip():
        raise _ValidationError("prompt must not be blank")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise _ValidationError(f"prompt must be at most {MAX_PROMPT_CHARS} characters, got {len(prompt)}")
    model = body.get("model")
    if model is None:
        raise _ValidationError("model is required")
    if not isinstance(model, str) or model not in MODELS:
        raise _ValidationError(f"model must be one of: {', '.join(sorted(MODELS))}")
    # A present-but-null optional field is refused: the real API's handling of null is undocumented,
    # and a strict stand-in makes the bot omit fields instead of relying on lenient parsing.
    aspect_ratio = body.get("aspectRatio", UNSET)
    if aspect_ratio is not UNSET and not (
        isinstance(aspect_ratio, str) and aspect_ratio in ASPECT_RATIO_SIZES
    ):
        raise _ValidationError(f"aspectRatio must be one of: {', '.join(ASPECT_RATIO_SIZES)}")
    images = body.get("images", [])
    if not isinstance(images, list):
        raise _ValidationError("images must be an array of URL strings")
    if len(images) > MAX_REFERENCE_IMAGES:
        raise _ValidationError(f"images must hold at most {MAX_REFERENCE_IMAGES} URLs, got {len(images)}")
    for index, url in enumerate(images):
        if not _is_http_url(url):
            raise _ValidationError(f"images[{index}] must be an http(s) URL")
    return _Submission(
        prompt=prompt,
        model=model,
        aspect_ratio=None if aspect_ratio is UNSET else aspect_ratio,
        reference_images=tuple(images),
    )


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status, headers=headers)


def _raw(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _ByteBudgetLRU:
    """An LRU of encoded images bounded by total bytes, because big-image PNGs weigh megabytes each.

    Locked because images are encoded in executor threads."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, int], value: bytes) -> None:
        if len(value) > self._max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._size -= len(old) if old is not None else 0
            self._items[key] = value
            self._size += len(value)
            while self._size > self._max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _placeholder_png(task: SandboxTask, n: int) -> bytes:
    width, height = task.image_size
    digest = hashlib.sha256(task.task_id.encode()).digest()
    background = (digest[0], digest[1], digest[2])
    # Pick whichever of black or white reads better on the background (ITU-R BT.601 luma).
    luma = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    margin = width // 16
    font = _font(max(12, width // 24))
    line_height = int(font.size * 1.3) if isinstance(font, ImageFont.FreeTypeFont) else 12
    footer = f"sandbox - image {n + 1} of {task.image_count} - {task.task_id[:8]}"
    max_lines = max(1, (height - 2 * margin - 2 * line_height) // line_height)
    # Measuring a 5000-character prompt is wasted work: only a few lines fit, and no glyph is under 4 px.
    text = _drawable(task.prompt, font)[: max_lines * width // 4]
    lines = _wrap(draw, text, font, width - 2 * margin, max_lines)
    for index, line in enumerate(lines):
        draw.text((margin, margin + index * line_height), line, fill=ink, font=font)
    draw.text((margin, height - margin - line_height), footer, fill=ink, font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _drawable(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> str:
    # Pillow's bitmap fallback font only encodes Latin-1; FreeType draws a box for a missing glyph.
    text = " ".join(text.split())
    if isinstance(font, ImageFont.FreeTypeFont):
        return text
    return text.encode("latin-1", "replace").decode("latin-1")


def _wrap(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    max_width: int,
    max_lines: int,
) -> list[str]:
    """Greedy word wrap by measured width; overlong words are cut, extra lines become an ellipsis."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}".strip()
        if draw.textlength(candidate, font=font) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while (
            len(lines) <= max_lines and len(current) > 1 and draw.textlength(current, font=font) > max_width
        ):
            cut = _fitting_prefix(draw, current, font, max_width)
            lines.append(current[:cut])
            current = current[cut:]
        if len(lines) > max_lines:
            break
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and draw.textlength(last + "...", font=font) > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "..."
    return lines


def _fitting_prefix(
    draw: ImageDraw.ImageDraw, word: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int
) -> int:
    """Length of the longest prefix (at least one character) that fits; binary search keeps a
    5000-character word cheap."""
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if draw.textlength(word[:middle], font=font) <= max_width:
            low = middle
        else:
            high = middle - 1
    return low


def _noise_png(task: SandboxTask, n: int) -> bytes:
    width, height = (side * BIG_IMAGE_SCALE for side in task.image_size)
    seed = int.from_bytes(hashlib.sha256(f"{task.task_id}/{n}".encode()).digest()[:8], "big")
    pixels = random.Random(seed).randbytes(width * height * 3)
    buffer = io.BytesIO()
    # Noise does not compress anyway; level 0 halves the encoding time of a 12 MB image.
    Image.frombytes("RGB", (width, height), pixels).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


class Sandbox:
    """The fake API server plus the knobs tests and the benchmark turn.

    Attributes tests may read: ``config``, ``tasks`` (task id -> :class:`SandboxTask`), ``requests``
    (a deque of :class:`RecordedRequest`, oldest first), ``base_url`` (set by :meth:`start`)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.tasks: dict[str, SandboxTask] = {}
        self.requests: deque[RecordedRequest] = deque(maxlen=self.config.request_log_size)
        self.base_url: str | None = None
        self._rng = random.Random(self.config.seed)
        self._forced_outcomes: deque[_ForcedOutcome] = deque()
        self._forced_poll_failures: deque[int] = deque()
        self._forced_rate_limits: deque[int] = deque()
        self._raw_answers: dict[str, deque[tuple[int, bytes]]] = {"submit": deque(), "poll": deque()}
        self._images = _ByteBudgetLRU(self.config.image_cache_bytes)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None  # for reference images, made on first use
        self._outage: tuple[float, float] | None = None  # (start, end) in config.clock
        self.app = web.Application(middlewares=[self._outage_middleware])
        self.app.router.add_post("/xai/images", self._handle_submit)
        self.app.router.add_get("/xai/tasks", self._handle_poll)
        self.app.router.add_get(r"/sandbox/images/{task_id}/{n:\d+}.png", self._handle_image)
        self.app.router.add_post("/xai/videos", self._handle_video_submit)
        self.app.router.add_get(r"/sandbox/videos/{task_id}.mp4", self._handle_video)

    # ----- lifecycle -----

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Starts listening and returns the base URL; port 0 picks a free port."""
        if self._runner is not None:
            raise RuntimeError("the sandbox is already started")
        # A short shutdown grace: a sandbox has nothing to flush, and tests leave delayed submits behind.
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.config.outage_after is not None:
            self.start_outage(self.config.outage_for, after=self.config.outage_after)
        bound_host, bound_port = runner.addresses[0][:2]
        self.base_url = f"http://{_url_host(host, bound_host)}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    # ----- test controls -----

    def force_next(
        self,
        status: FinalStatus = "completed",
        *,
        error_message: str | None = None,
        error_code: int | None = None,
        result: object = UNSET,
        never_finish: bool = False,
        duration: float | None = None,
    ) -> None:
        """Decides the outcome of the next submitted task (calls queue up, one per task).

        ``result`` is returned verbatim once the task is final; ``never_finish`` keeps the task
        ``processing`` forever; ``duration`` overrides the configured one."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {', '.join(FINAL_STATUSES)}")
        if status != "completed":
            default_message, default_code = _FORCED_FAILURE_DEFAULTS[status]
            error_message = default_message if error_message is None else error_message
            error_code = default_code if error_code is None else error_code
        outcome = _ForcedOutcome(
            None if never_finish else status, error_message, error_code, result, duration
        )
        self._forced_outcomes.append(outcome)

    def fail_next_polls(self, n: int, status: int = 503) -> None:
        """The next ``n`` polls (after the key check) answer ``status`` with a JSON error body."""
        self._forced_poll_failures.extend([status] * n)

    def rate_limit_next(self, n: int, retry_after: int = 1) -> None:
        """The next ``n`` API requests (submit or poll, after the key check) answer 429."""
        self._forced_rate_limits.extend([retry_after] * n)

    def answer_next(self, route: Literal["submit", "poll"], body: bytes, *, status: int = 200) -> None:
        """The next request to ``route`` (after the key check) is answered with exactly ``body`` as
        ``application/json``, whatever it holds: broken, nested, oversized or mistyped answers for
        the client's tests. A submit answered this way still creates its task, as a real gateway
        that took the request and then garbled its answer would have."""
        self._raw_answers[route].append((status, body))

    def start_outage(self, seconds: float, *, after: float = 0.0) -> tuple[float, float]:
        """From ``after`` seconds (of ``clock``) from now, every request answers 503 for ``seconds``.
        Returns the window (start, end) in clock time."""
        start = self.config.clock() + after
        self._outage = (start, start + seconds)
        return self._outage

    @property
    def outage_window(self) -> tuple[float, float] | None:
        return self._outage

    def in_outage(self) -> bool:
        if self._outage is None:
            return False
        start, end = self._outage
        return start <= self.config.clock() < end

    @web.middleware
    async def _outage_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if not self.in_outage():
            response: web.StreamResponse = await handler(request)
            return response
        await self._record(request)  # still counted: an outage test counts what reached the API
        return _error(503, "Service temporarily unavailable (sandbox outage)")

    def completed_at(self, task_id: str) -> float | None:
        """The clock time the task became final, or ``None`` if it is not final (yet)."""
        task = self.tasks[task_id]
        finished = task.finished_clock
        if finished is None or finished > self.config.clock():
            return None
        return finished

    def status(self, task_id: str) -> TaskStatus:
        return self.tasks[task_id].status_at(self.config.clock())

    @property
    def task_count(self) -> int:
        return len(self.tasks)

    def image_url(self, base_url: str, task_id: str, n: int = 0) -> str:
        return f"{base_url.rstrip('/')}/sandbox/images/{task_id}/{n}.png"

    def image_bytes(self, task_id: str, n: int = 0) -> bytes:
        """Exactly the PNG the image route serves for this task; drawn on first use, then cached."""
        task = self.tasks[task_id]
        if not 0 <= n < task.image_count:
            raise IndexError(f"task {task_id} has {task.image_count} image(s), not {n + 1}")
        cached = self._images.get((task_id, n))
        if cached is not None:
            return cached
        png = _noise_png(task, n) if self.config.big_images else _placeholder_png(task, n)
        self._images.put((task_id, n), png)
        return png

    # ----- task creation -----

    def _create_task(self, submission: _Submission) -> SandboxTask:
        forced = self._forced_outcomes.popleft() if self._forced_outcomes else None
        now = self.config.clock()
        duration = self._draw_duration(forced)
        task = SandboxTask(
            task_id=uuid.UUID(int=self._rng.getrandbits(128), version=4).hex,
            trace_id=f"{self._rng.getrandbits(128):032x}",
            prompt=submission.prompt,
            model=submission.model,
            aspect_ratio=submission.aspect_ratio,
            reference_images=submission.reference_images,
            created_clock=now,
            created_wall=datetime.now(UTC),
            duration=duration,
            processing_at=now + duration * self.config.processing_after,
            final_status="completed",
            image_count=self.config.images_per_task,
        )
        if forced is not None:
            task.final_status = forced.status
            task.error_message, task.error_code = forced.error_message, forced.error_code
            task.raw_result = forced.result
        elif self.config.failure_rate and self._rng.random() < self.config.failure_rate:
            task.final_status = "failed"
            task.error_message, task.error_code = self._rng.choice(_RANDOM_FAILURES)
        self.tasks[task.task_id] = task
        log.debug(
            "sandbox task %s created, traceId=%s, duration %.2fs", task.task_id, task.trace_id, duration
        )
        return task

    def _draw_duration(self, forced: _ForcedOutcome | None) -> float:
        if forced is not None and forced.duration is not None:
            return forced.duration
        if self.config.duration_sampler is not None:
            return max(0.0, self.config.duration_sampler(self._rng))
        return self.config.duration

    # ----- HTTP handlers -----

    async def _handle_submit(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            submission = _validate_submission(body)
        except _ValidationError as exc:
            return _error(400, str(exc))
        if self.config.check_references and submission.reference_images:
            problems = await asyncio.gather(
                *(self._check_reference(n, url) for n, url in enumerate(submission.reference_images))
            )
            refused = next((problem for problem in problems if problem is not None), None)
            if refused is not None:
                return _error(400, refused)
        task = self._create_task(submission)
        if self.config.submit_delay:
            # The task exists before the delay, as on a real gateway: a client that gives up
            # waiting has still started (and been billed for) a task.
            await asyncio.sleep(self.config.submit_delay)
        if self._raw_answers["submit"]:
            return _raw(*self._raw_answers["submit"].popleft())
        return web.json_response({"taskId": task.task_id})

    async def _handle_video_submit(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            video = validate_video_submission(body)
        except VideoRequestError as exc:
            return _error(400, str(exc))
        if self.config.check_references and video.reference_images:
            problem = await self._check_reference(0, video.reference_images[0])
            if problem is not None:
                return _error(400, problem)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        spec = await video_spec(video, self._http)
        submission = _Submission(video.prompt, VIDEO_MODEL, video.aspect_ratio, video.reference_images)
        task = self._create_task(submission)
        task.video = spec
        if self._raw_answers["submit"]:
            return _raw(*self._raw_answers["submit"].popleft())
        return web.json_response({"taskId": task.task_id})

    async def _handle_video(self, request: web.Request) -> web.Response:
        await self._record(request)
        task = self.tasks.get(request.match_info["task_id"])
        if task is None or task.video is None or task.status_at(self.config.clock()) != "completed":
            return _error(404, "Video not found")
        mp4 = await asyncio.get_running_loop().run_in_executor(None, self.video_bytes, task.task_id)
        return web.Response(body=mp4, content_type="video/mp4")

    def video_url(self, base_url: str, task_id: str) -> str:
        return f"{base_url.rstrip('/')}/sandbox/videos/{task_id}.mp4"

    def video_bytes(self, task_id: str) -> bytes:
        """Exactly the MP4 the video route serves for this task; made on first use, then cached."""
        task = self.tasks[task_id]
        if task.video is None:
            raise ValueError(f"task {task_id} is not a video task")
        cached = self._images.get((task_id, -1))
        if cached is not None:
            return cached
        spec = task.video
        # PyAV (FFmpeg, some 30 MB) is loaded by the first video only: the bot's command line imports
        # this module for `sandbox`'s options, and no image-only process should carry it.
        from sandbox.clips import make_video  # noqa: PLC0415

        mp4 = make_video(task.prompt, spec.duration, spec.width, spec.height)
        self._images.put((task_id, -1), mp4)
        return mp4

    async def _check_reference(self, index: int, url: str) -> str | None:
        """The refusal message for one unusable reference image, or None. The service has to read the
        image to use it, so this is what it would say."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        problem = await reference_problem(
            self._http,
            url,
            max_bytes=self.config.max_reference_bytes,
            timeout=self.config.reference_timeout,
        )
        return None if problem is None else f"images[{index}]: the reference image {problem}"

    async def _handle_poll(self, request: web.Request) -> web.Response:
        if self.config.poll_delay:
            await asyncio.sleep(self.config.poll_delay)
        await self._record(request)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if self._forced_poll_failures:
            status = self._forced_poll_failures.popleft()
            return _error(status, "Injected failure (sandbox)")
        if self._raw_answers["poll"]:
            return _raw(*self._raw_answers["poll"].popleft())
        task_id = request.query.get("taskId", "")
        if not task_id:
            return _error(400, "taskId is required")
        task = self.tasks.get(task_id)
        if task is None:
            return _error(404, f"Task {task_id} not found")
        return web.json_response(await self._task_body(task, self._base_url_for(request)))

    async def _handle_image(self, request: web.Request) -> web.Response:
        await self._record(request)
        task = self.tasks.get(request.match_info["task_id"])
        n = int(request.match_info["n"])
        if task is None or n >= task.image_count or task.status_at(self.config.clock()) != "completed":
            return _error(404, "Image not found")
        png = await asyncio.get_running_loop().run_in_executor(None, self.image_bytes, task.task_id, n)
        return web.Response(body=png, content_type="image/png")

    async def _record(self, request: web.Request) -> Any:
        """Records the request for tests and returns its JSON body (``None`` if absent or invalid)."""
        body: Any = None
        if request.body_exists:
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                authorization=request.headers.get("Authorization"),
                json=body,
                at=time.monotonic(),
                clock=self.config.clock(),
            )
        )
        return body

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The key check comes before rate limiting, so a bad key is reported as such and never
        uses up a forced 429."""
        refusal = self._check_key(request)
        if refusal is None:
            refusal = self._rate_limited()
        return refusal

    def _check_key(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization")
        if not header:
            return _error(401, "Missing API key")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.config.api_key.encode()
        ):
            return _error(401, "Invalid API key")
        return None

    def _rate_limited(self) -> web.Response | None:
        if self._forced_rate_limits:
            retry_after = self._forced_rate_limits.popleft()
        elif self.config.rate_limit_rate and self._rng.random() < self.config.rate_limit_rate:
            retry_after = self.config.retry_after
        else:
            return None
        return _error(
            429, f"Too many requests, retry after {retry_after} s", headers={"Retry-After": str(retry_after)}
        )

    def _base_url_for(self, request: web.Request) -> str:
        if self.config.public_base_url:
            return self.config.public_base_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    # ----- poll answers -----

    async def _task_body(self, task: SandboxTask, base_url: str) -> dict[str, Any]:
        status = task.status_at(self.config.clock())
        final = status in FINAL_STATUSES
        finished = task.created_wall + timedelta(seconds=task.duration) if final else None
        failed = final and status != "completed"
        return {
            "taskId": task.task_id,
            "status": status,
            "result": await self._result(task, base_url) if final else None,
            "errorMessage": task.error_message if failed else None,
            "errorCode": task.error_code if failed else None,
            "createdAt": _iso(task.created_wall),
            "finishedAt": _iso(finished) if finished is not None else None,
            "traceId": task.trace_id,
        }

    async def _result(self, task: SandboxTask, base_url: str) -> object:
        if task.raw_result is not UNSET:
            return task.raw_result
        if task.final_status != "completed":
            return None
        shape = self.config.result_shape
        if task.video is not None:
            return video_result(self.video_url(base_url, task.task_id), shape)
        if shape == "b64":
            loop = asyncio.get_running_loop()
            pngs = [
                await loop.run_in_executor(None, self.image_bytes, task.task_id, n)
                for n in range(task.image_count)
            ]
            return {"data": [{"b64_json": base64.b64encode(png).decode("ascii")} for png in pngs]}
        urls = [self.image_url(base_url, task.task_id, n) for n in range(task.image_count)]
        return _shape_urls(shape, urls)


def _shape_urls(shape: ResultShape, urls: list[str]) -> dict[str, Any]:
    if shape == "urls":
        return {"images": urls}
    if shape == "objects":
        return {"images": [{"url": url} for url in urls]}
    if shape == "data":
        return {"data": [{"url": url} for url in urls]}
    if shape == "nested":
        return {"output": {"result": {"image_urls": urls}}}
    return {}


def _url_host(requested: str, bound: str) -> str:
    # A wildcard bind is reachable on loopback; an IPv6 literal needs brackets in a URL.
    host = requested or bound
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def serve_forever(
    host: str = "127.0.0.1", port: int = 8090, config: SandboxConfig | None = None
) -> None:
    """Runs the sandbox until cancelled (Ctrl-C), for ``python -m bot sandbox``."""
    sandbox = Sandbox(config)
    base_url = await sandbox.start(host, port)
    log.info("Sandbox image API listening on %s", base_url)
    log.info("Point the bot's API base URL at %s and use the API key %r", base_url, sandbox.config.api_key)
    try:
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()
        log.info("Sandbox stopped after %d task(s)", sandbox.task_count)


def build_arg_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Adds the sandbox options to ``parser`` (or a new one), so ``bot/__main__`` can reuse them."""
    parser = parser or argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    defaults = SandboxConfig()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-key", default=defaults.api_key)
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds per task")
    parser.add_argument(
        "--duration-range",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="draw each task's duration log-uniformly between LOW and HIGH seconds (default: every task"
        " takes --duration)",
    )
    parser.add_argument("--failure-rate", type=float, default=defaults.failure_rate)
    parser.add_argument("--rate-limit-rate", type=float, default=defaults.rate_limit_rate)
    parser.add_argument("--result-shape", choices=RESULT_SHAPES, default=defaults.result_shape)
    parser.add_argument("--images-per-task", type=int, default=defaults.images_per_task)
    parser.add_argument(
        "--big-images",
        action="store_true",
        help="serve multi-megabyte images, to try upload limits and re-encoding (default: small images)",
    )
    parser.add_argument(
        "--no-reference-check",
        dest="check_references",
        action="store_false",
        help="accept reference image URLs without downloading them (default: each reference is"
        " downloaded and checked, as the real API does)",
    )
    parser.add_argument(
        "--seed", type=int, help="random seed, for repeatable runs (default: a new one each run)"
    )
    parser.add_argument(
        "--public-base-url",
        help="base of result URLs when behind a proxy (default: the address it listens on)",
    )
    parser.add_argument(
        "--outage-after",
        type=float,
        metavar="S",
        help="simulate an outage S seconds after start: every request then answers 503 (default: no outage)",
    )
    parser.add_argument(
        "--outage-for",
        type=float,
        default=defaults.outage_for,
        metavar="S",
        help="how long the outage of --outage-after lasts, in seconds (default: %(default)s)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    return SandboxConfig(
        api_key=args.api_key,
        duration=args.duration,
        duration_sampler=log_uniform(*args.duration_range) if args.duration_range else None,
        failure_rate=args.failure_rate,
        rate_limit_rate=args.rate_limit_rate,
        result_shape=args.result_shape,
        images_per_task=args.images_per_task,
        big_images=args.big_images,
        check_references=args.check_references,
        seed=args.seed,
        public_base_url=args.public_base_url,
        outage_after=args.outage_after,
        outage_for=args.outage_for,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(args.host, args.port, config_from_args(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
