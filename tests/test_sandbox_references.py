"""The sandbox reads reference images as the real service must, and the member hears why one is refused."""

from __future__ import annotations

import asyncio

import aiohttp

from bot.core.models import JobStatus
from tests.bot_harness import World, wait_for_job
from tests.helpers import as_shown

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def test_bad_references_are_refused_with_a_clear_message(world: World) -> None:
    fake, sandbox = world.fake, world.sandbox
    sandbox.config.max_reference_bytes = 50_000
    expired = fake.make_attachment("gone.png", "image/png")
    fake.expire_url(expired["url"])
    text = fake.make_attachment("cat.png", "image/png", data=b"this is a text file, not a picture\n" * 20)
    huge = fake.make_attachment("huge.png", "image/png", data=PNG_MAGIC + bytes(60_000))
    cases = [
        (expired, "could not be downloaded (HTTP 404)"),
        (text, "is not a PNG, JPEG, WebP or GIF image"),
        (huge, "larger than"),
    ]
    async with world.bot() as bot:
        for job_id, (attachment, expected) in enumerate(cases, start=1):
            interaction = await fake.invoke_slash(
                "imagine", {"prompt": f"edit {job_id}"}, attachments={"image1": attachment}
            )
            job = await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id)
            assert job.status is JobStatus.FAILED
            shown = as_shown(fake.messages[interaction.original_message_id or 0]["content"])
            assert "refused this request" in shown and expected in shown, shown
    assert sandbox.task_count == 0  # nothing was started, so nothing is billed
    assert len(world.submits()) == 3


async def test_a_good_reference_is_read_and_accepted(world: World) -> None:
    fake, sandbox = world.fake, world.sandbox
    reference = fake.make_attachment("cat.png", "image/png")
    async with world.bot() as bot:
        await fake.invoke_slash("imagine", {"prompt": "a cat"}, attachments={"image1": reference})
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
    fetched = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/cat.png")]
    assert len(fetched) == 1 and sandbox.task_count == 1


async def test_a_slow_reference_host_is_given_up_on(world: World) -> None:
    sandbox = world.sandbox
    sandbox.config.reference_timeout = 0.3
    started = asyncio.Event()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        started.set()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n" + PNG_MAGIC
        )
        await writer.drain()
        await asyncio.sleep(5)  # the slow host under test: it never sends the rest in time
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    body = {"prompt": "x", "model": "grok-imagine-image", "images": [f"http://127.0.0.1:{port}/slow.png"]}
    headers = {"Authorization": "Bearer sandbox-key"}
    try:
        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(3),
            http.post(f"{sandbox.base_url}/xai/images", json=body, headers=headers) as response,
        ):
            answer = await response.json()
            assert response.status == 400
    finally:
        server.close()
    assert started.is_set() and "no answer in time" in answer["message"]
    assert sandbox.task_count == 0
