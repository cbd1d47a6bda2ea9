"""Shared test helpers: waiting with a deadline, a sink that records what the runner tells it, and runner
wiring."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import io
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from PIL import Image

from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.adapters.store.jobs_repo import RequestsPage
from bot.core.clock import Clock
from bot.core.image_file import ImageFile
from bot.core.models import Job, Stage
from bot.core.runner import DeliveryReceipt, JobRunner, RunnerConfig
from bot.core.schedule import PollSchedule
from bot.core.texts import Text, Verbatim, from_stored, render
from bot.ops.runner_wiring import build_runner

FAST_SCHEDULE = PollSchedule(min_interval=0.05, max_interval=0.5, first_poll=0.1)
FAST_RUNNER = RunnerConfig(
    time_limit=30.0,
    status_update_interval=0.0,
    submit_backoff=0.05,
    shutdown_grace=0.2,
    idle_wait=0.5,
)


T = TypeVar("T")


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    what: str | Callable[[], str],
    timeout: float = 10.0,
    interval: float = 0.02,
) -> T:
    """Check `condition` (plain or async) every `interval` seconds until it returns something truthy, and
    return that. After `timeout` seconds fail with a TimeoutError naming `what` (a text, or a function
    that describes what was last seen), so that a wait that would never end fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            text = what if isinstance(what, str) else what()
            raise TimeoutError(f"waited {timeout:g} s for {text}")
        await asyncio.sleep(interval)


def _runner_tasks(runner: JobRunner) -> list[asyncio.Task[Any]]:
    """Every background task of the runner's registry: submits, other work on jobs (polls, deliveries,
    endings) and later delivery attempts. The one place the tests read the registry's task groups."""
    return [task for group in runner.parts.registry._tasks.values() for task in group]


def runner_idle(runner: JobRunner) -> bool:
    """Nothing under way in this runner: no submit, poll, delivery or later retry."""
    return not _runner_tasks(runner)


async def runner_settled(runner: JobRunner, timeout: float = 10.0) -> None:
    """Wait for a definite "nothing more will happen": no job of the runner's source is still queued,
    submitting or running in the store, the poll loop has made a whole pass since then (woken, so at
    once; a job the store says is due would have been claimed in it), and nothing is under way."""
    seen: dict[str, int] = {}

    async def done() -> bool:
        seen.clear()
        seen.update(await runner.store.ops.unfinished_by_status(runner.source))
        if set(seen) & {"queued", "submitting", "running"}:
            return False
        for _ in range(2):  # the second pass starts only once the first has claimed what was due
            before = getattr(runner, "loop_ran_at", None)
            runner.wake()
            await wait_until(
                lambda b=before: getattr(runner, "loop_ran_at", None) != b,  # type: ignore[misc]
                "a pass of the runner's poll loop",
                timeout,
                interval=0.005,
            )
        return runner_idle(runner)

    await wait_until(
        done,
        lambda: f"the runner to settle (jobs not ended: {seen or 'none'}; under way: {_under_way(runner)})",
        timeout,
    )


def _under_way(runner: JobRunner) -> str:
    names = sorted(t.get_coro().__qualname__ for t in _runner_tasks(runner))  # type: ignore[union-attr]
    return ", ".join(names) or "nothing"


def as_shown(content: str) -> str:
    """Message text as a member reads it: Discord hides a backslash that escapes punctuation."""
    return re.sub(r"\\([^0-9A-Za-z\s])", r"\1", content)


@dataclass
class Outcome:
    job: Job
    images: list[ImageFile] | None = None
    stored: str | None = None  # the reason as the job row keeps it (bot.core.texts.stored)

    @property
    def text(self) -> Text | Verbatim | None:
        return from_stored(self.stored) if self.stored is not None else None

    @property
    def reason(self) -> str | None:
        """The reason in English, as the operator's log and the CSV export read it."""
        return render(None, self.text) if self.text is not None else None


@dataclass
class RecordingSink:
    """A real sink (the JobSink protocol), as the terminal command's is, that keeps what it was told."""

    progress_log: list[tuple[int, Stage]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None:
        self.progress_log.append((job.id, stage))

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        self.outcomes.append(Outcome(job, images=images))
        self.changed.set()
        return DeliveryReceipt("test")

    async def find_delivery(self, job: Job) -> DeliveryReceipt | None:
        return None  # nothing to look up: an earlier process's output is not visible from here

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        self.outcomes.append(Outcome(job, stored=reason))
        self.changed.set()
        return DeliveryReceipt("test")

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Outcome]:
        await wait_until(
            lambda: len(self.outcomes) >= count,
            lambda: f"{count} outcome(s) at the sink (it has {len(self.outcomes)})",
            timeout,
        )
        return self.outcomes


@contextlib.asynccontextmanager
async def running_runner(
    db_path: Path,
    base_url: str,
    sink: RecordingSink,
    *,
    api_key: str = "sandbox-key",
    config: RunnerConfig = FAST_RUNNER,
    schedule: PollSchedule = FAST_SCHEDULE,
    before_start: Callable[[Store], object] | None = None,
    result_hosts: tuple[str, ...] = (),
    busy_timeout: float = 10.0,
    clock: Clock | None = None,
) -> AsyncIterator[JobRunner]:
    async with open_session(FetchPolicy.build(base_url, result_hosts)) as session:
        store = await Store.open(db_path, busy_timeout=busy_timeout)
        api = ImageApi(session, base_url, api_key, "grok-imagine-image", timeout=5.0)
        runner = build_runner(
            store, api, session, sink, config, schedule=schedule, source="test", clock=clock
        )
        try:
            await runner.start()
            yield runner
        finally:
            await runner.stop()
            await store.close()


def png_bytes(size: tuple[int, int] = (64, 48), color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


class ImageHost:
    """A small image host on one loopback address, recording every request it gets.

    Tests use it both as a "public" host (allowed through RESULT_HOSTS, since tests only have loopback)
    and as an "internal" one (any other loopback address or port), which must never see a request.
    Routes: `/img.png`, `/file/<name>` (bytes put in `files`), `/redirect?to=<url>`, `/loop` (redirects
    to itself), `/trickle` (a PNG header, then a byte a second)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.hits: list[str] = []
        self.files: dict[str, bytes] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.origin}{path}"

    async def __aenter__(self) -> ImageHost:
        app = web.Application()
        app.router.add_get("/img.png", self._image)
        app.router.add_get("/file/{name}", self._file)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/loop", self._loop)
        app.router.add_get("/trickle", self._trickle)
        app.router.add_get("/{tail:.*}", self._image)  # whatever an attacker names, it answers
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _image(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        return web.Response(body=png_bytes(color="red"), content_type="image/png")

    async def _file(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        name = request.match_info["name"]
        return web.Response(body=self.files[name], content_type="application/octet-stream")

    async def _redirect(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        raise web.HTTPFound(request.query["to"])

    async def _loop(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        raise web.HTTPFound("/loop")

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        for byte in png_bytes():
            await response.write(bytes([byte]))
            await asyncio.sleep(1.0)  # the trickle this route simulates
        return response


@dataclass
class FailingSink(RecordingSink):
    """A sink whose every call fails the first `failures` times, as a terminal whose output folder is
    gone or a Discord that answers 500 does (then it works again)."""

    failures: int = 1_000_000
    calls: int = 0

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        self._maybe_fail()
        return await super().deliver(job, images, elapsed)

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        self._maybe_fail()
        return await super().fail(job, reason)

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(28, "No space left on device")


class UnhandledErrors(logging.Handler):
    """What would otherwise vanish: asyncio's "Task exception was never retrieved" (and any other
    context its loop reports) and the runner's "background task failed" lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "never retrieved" in text or "background task" in text:
            self.found.append(text)


@contextlib.contextmanager
def unhandled_errors() -> Iterator[UnhandledErrors]:
    loop = asyncio.get_running_loop()
    handler = UnhandledErrors()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: handler.found.append(str(context.get("message"))))
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        gc.collect()  # a task that died unretrieved is reported when it is collected
        loop.set_exception_handler(previous)
        logging.getLogger().removeHandler(handler)


def with_search_path(url: str, schema: str) -> str:
    """`url` with every connection's search_path set to `schema`."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{schema}"


def fresh_pg_schema(server_url: str) -> Iterator[str]:
    """A new empty schema on the test server, dropped afterwards: each test its own database."""
    import uuid

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(server_url, schema)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def posted_ids(page: RequestsPage) -> list[int]:
    """The job ids of a /history page (`store.jobs.delivered_requests`), request after request."""
    return [job.id for group in page.groups for job in group]
