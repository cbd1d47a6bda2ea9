"""Answers of the image API are read only up to MAX_ANSWER_MB: a larger (or endless) answer is refused
as malformed, with a log line saying why, instead of being read whole into memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.adapters.image_api import ImageApi, MalformedAnswerError
from sandbox.server import Sandbox
from tests.helpers import wait_until


async def test_a_poll_answer_over_the_cap_is_malformed(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.force_next("completed", result={"images": ["https://cdn.example/1.png"], "pad": "x" * 300_000})
    async with aiohttp.ClientSession() as session:
        api = ImageApi(
            session, sandbox.base_url or "", "sandbox-key", "grok-imagine-image", max_answer_bytes=100_000
        )
        task_id = await api.submit("big answer", None)
        await wait_until(lambda: sandbox.completed_at(task_id), "the sandbox to finish the task")
        with (
            caplog.at_level(logging.WARNING, logger="bot.adapters.image_api"),
            pytest.raises(MalformedAnswerError),
        ):
            await api.poll(task_id)
        assert "more than 100000 bytes" in caplog.text and "MAX_ANSWER_MB" in caplog.text
        roomy = ImageApi(session, sandbox.base_url or "", "sandbox-key", "grok-imagine-image")
        assert (await roomy.poll(task_id)).status == "completed"  # the same answer under the default cap


@pytest.fixture
async def endless_api() -> AsyncIterator[tuple[str, list[int]]]:
    """An 'API' whose poll answer never ends (chunked, no length): it records how much it wrote."""
    written: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"status": "completed", "result": "')
        total = 0
        try:
            while total < 50_000_000:
                await response.write(b"x" * 65536)
                total += 65536
        finally:
            written.append(total)
        return response

    app = web.Application()
    app.router.add_get("/xai/tasks", endless)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", written
    finally:
        await runner.cleanup()


async def test_an_endless_answer_is_cut_off_at_the_cap(endless_api: tuple[str, list[int]]) -> None:
    base, written = endless_api
    async with aiohttp.ClientSession() as session:
        api = ImageApi(session, base, "key", "grok-imagine-image", max_answer_bytes=1_000_000)
        async with asyncio.timeout(10):
            with pytest.raises(MalformedAnswerError):
                await api.poll("forever")
        await wait_until(lambda: written, "the server to notice that the client went away")
    assert written[0] < 20_000_000  # far from the 50 MB it would have sent
