"""No error leaves a job stranded (issue 18, point 4): every entry point of the runner — submit, poll,
delivery and the resume after a restart — turns an exception nobody foresaw into a job state with a
clear message and a refund, and gives the member's running slot back.

The hostile answers come over real HTTP: a proxy in front of the sandbox answers chosen requests with
200 KB of nested JSON (`[[[...]]]`, which `json.loads` cannot read without a RecursionError) and passes
the rest to the sandbox."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.models import ImageRequest, Job, JobStatus, Origin
from bot.core.policy.quotas import Member
from bot.core.runner import MSG_NOT_MADE, MSG_UNKNOWN
from bot.ops.runner_wiring import build_runner
from sandbox.server import Sandbox
from tests.helpers import FAST_RUNNER, FAST_SCHEDULE, RecordingSink, running_runner, wait_until

GUILD, USER = 1, 3
MEMBER = Member(GUILD, USER)
ORIGIN = Origin(source="test", guild_id=GUILD, channel_id=2, user_id=USER)
DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 KB


class HostileProxy:
    """Answers the next requests queued for a route with raw bytes; forwards everything else."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.answers: dict[str, deque[bytes]] = {"POST": deque(), "GET": deque()}
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._client = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        queued = self.answers[request.method]
        if queued:
            return web.Response(body=queued.popleft(), content_type="application/json")
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in {"authorization", "content-type"}}
        async with self._client.request(
            request.method, self.upstream + request.path_qs, data=await request.read(), headers=headers
        ) as answer:
            return web.Response(
                body=await answer.read(), status=answer.status, content_type="application/json"
            )


@pytest.fixture
async def proxy(sandbox: Sandbox) -> AsyncIterator[HostileProxy]:
    server = HostileProxy(sandbox.base_url or "")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def slot_and_usage(db_path: Path) -> tuple[int, int]:
    """(the member's running jobs, the uses counted today) as the next admission would see them."""
    store = await Store.open(db_path)
    try:
        summary = await store.usage.summary(MEMBER, time.time(), 5)
    finally:
        await store.close()
    return summary.running, summary.used_today


async def admitted(runner: Any) -> Job:
    decision, jobs = await runner.admit(ImageRequest("a lighthouse"), ORIGIN, MEMBER, 5)
    job = jobs[0] if jobs else None
    assert decision.allowed and job is not None
    return job


async def ended(db_path: Path, job_id: int) -> Job:
    store = await Store.open(db_path)
    try:
        job = await store.jobs.get(job_id)
    finally:
        await store.close()
    assert job is not None
    return job


async def test_an_unreadable_submit_answer_ends_the_job_unknown_and_refunded(
    proxy: HostileProxy, sandbox: Sandbox, db_path: Path
) -> None:
    proxy.answers["POST"].append(DEEP)
    sink = RecordingSink()
    async with running_runner(db_path, proxy.base_url, sink) as runner:
        job = await admitted(runner)
        await runner.launch(job, None)
        [outcome] = await sink.wait_for(1)
    assert outcome.text == MSG_UNKNOWN  # it may have started a task: never sent again
    row = await ended(db_path, job.id)
    assert row.status is JobStatus.UNKNOWN and row.delivered_at is not None
    assert await slot_and_usage(db_path) == (0, 0)
    assert not sandbox.tasks


async def test_unreadable_poll_answers_are_retried_and_the_job_delivered(
    proxy: HostileProxy, sandbox: Sandbox, db_path: Path
) -> None:
    proxy.answers["GET"].extend([DEEP, DEEP])  # fewer than an outage takes
    sink = RecordingSink()
    images = (sandbox.base_url or "").removeprefix("http://")  # the result images come from the sandbox
    async with running_runner(db_path, proxy.base_url, sink, result_hosts=(images,)) as runner:
        job = await admitted(runner)
        await runner.launch(job, None)
        [outcome] = await sink.wait_for(1)
    assert outcome.images is not None and outcome.images[0].data
    assert not proxy.answers["GET"]  # both unreadable answers were met, and survived
    assert (await ended(db_path, job.id)).status is JobStatus.DELIVERED


class BrokenStore:
    """The real store, but one write fails with an error no database raises (a bug, say). `method` is
    `repository.method` (`jobs.record_poll`)."""

    def __init__(self, store: Any, method: str) -> None:
        self._store, self._method = store, method

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        repository, _, method = self._method.partition(".")
        if method:
            return BrokenStore(attribute, method) if name == repository else attribute
        if name != self._method:
            return attribute

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("an error nobody foresaw")

        return broken


async def test_an_unexpected_error_while_polling_ends_the_job_refunded(
    sandbox: Sandbox, db_path: Path
) -> None:
    sink = RecordingSink()
    base = sandbox.base_url or ""
    async with open_session(FetchPolicy.build(base, ())) as session:
        store = await Store.open(db_path)
        api = ImageApi(session, base, "sandbox-key", "grok-imagine-image", timeout=5.0)
        broken: Any = BrokenStore(store, "jobs.record_poll")
        runner = build_runner(broken, api, session, sink, FAST_RUNNER, schedule=FAST_SCHEDULE, source="test")
        try:
            await runner.start()
            sandbox.force_next("completed", duration=5.0)  # still running at the first poll
            job = await admitted(runner)
            await runner.launch(job, None)
            [outcome] = await sink.wait_for(1)
        finally:
            await runner.stop()
            await store.close()
    assert outcome.text == MSG_NOT_MADE
    assert (await ended(db_path, job.id)).status is JobStatus.FAILED
    assert await slot_and_usage(db_path) == (0, 0)


async def test_an_unexpected_error_while_delivering_closes_the_job(sandbox: Sandbox, db_path: Path) -> None:
    sink = RecordingSink()
    base = sandbox.base_url or ""
    async with open_session(FetchPolicy.build(base, ())) as session:
        store = await Store.open(db_path)
        api = ImageApi(session, base, "sandbox-key", "grok-imagine-image", timeout=5.0)
        broken: Any = BrokenStore(store, "jobs.mark_delivered")
        runner = build_runner(broken, api, session, sink, FAST_RUNNER, schedule=FAST_SCHEDULE, source="test")
        try:
            await runner.start()
            job = await admitted(runner)
            await runner.launch(job, None)

            async def closed() -> Job | None:
                found = await store.jobs.get(job.id)
                return found if found is not None and found.delivered_at is not None else None

            row = await wait_until(closed, "the job to be closed", interval=0.05)
        finally:
            await runner.stop()
            await store.close()
    # Closed, not left for a later start to post again; the member's slot is free.
    assert row.delivery == "undeliverable" and row.status is JobStatus.COMPLETED
    assert await slot_and_usage(db_path) == (0, 1)  # the image was made: the use counts


async def test_a_job_resumed_after_a_restart_meets_an_unreadable_answer(
    proxy: HostileProxy, sandbox: Sandbox, db_path: Path
) -> None:
    async with running_runner(db_path, proxy.base_url, RecordingSink()) as runner:
        runner.parts.closing = True  # admitted while stopping: left QUEUED for the next start
        job = await admitted(runner)
        await runner.launch(job, None)
    assert (await ended(db_path, job.id)).status is JobStatus.QUEUED
    proxy.answers["POST"].append(DEEP)
    sink = RecordingSink()
    async with running_runner(db_path, proxy.base_url, sink):
        [outcome] = await sink.wait_for(1)
    assert outcome.text == MSG_UNKNOWN
    assert (await ended(db_path, job.id)).status is JobStatus.UNKNOWN
    assert await slot_and_usage(db_path) == (0, 0)
