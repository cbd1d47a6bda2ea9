"""Image decoding, prompt-rule matching and DNS look-ups each have a thread pool of their own, and
work waits for a thread in its pool's queue, never inside a thread: forty large JPEG reductions
queued at once (eight deliveries of five images) do not delay another member's rule check or a
connection's name look-up. Both are answered while most of the decodes are still waiting."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from bot.adapters.media import limit_pixels_in_pool
from bot.adapters.safe_fetch import FetchPolicy, PoolResolver, fetch_public, open_session
from bot.adapters.store import Store
from bot.core.executors import DNS, IMAGES, RULES
from bot.core.image_file import ImageFile
from bot.core.policy.rulebook import NOT_CHECKED_IN_TIME, RuleBook

DECODES = 40


def big_jpeg(side: int = 4000) -> bytes:
    """A 16-megapixel JPEG (smooth, so it is small to hold): reduced, it decodes at half scale."""
    gradient = Image.linear_gradient("L").resize((side, side))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90), gradient))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
async def named_host() -> AsyncIterator[int]:
    """A web server on 127.0.0.1, reached by the name `localhost` (so the client must look it up)."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=b"hello", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def test_each_kind_of_work_has_its_own_bounded_pool() -> None:
    executors = {IMAGES.executor, RULES.executor, DNS.executor}
    assert len(executors) == 3
    assert IMAGES.size == 2 and RULES.size >= 2 and DNS.size >= 2
    assert IMAGES.executor._max_workers == IMAGES.size  # the bound is the number of threads


async def test_queued_decodes_hold_up_neither_a_rule_check_nor_a_name_look_up(
    db_path: Path, named_host: int
) -> None:
    data = await asyncio.to_thread(big_jpeg)
    store = await Store.open(db_path)
    threads_used: set[str] = set()

    def note_thread() -> None:
        threads_used.add(threading.current_thread().name)

    try:
        book = RuleBook(store.settings)
        await store.settings.add_rule(7, "word", "zebra", 9, 1.0)
        decodes = [
            asyncio.create_task(
                limit_pixels_in_pool(ImageFile(None, data, "image/jpeg"), max_pixels=4_000_000)
            )
            for _ in range(DECODES)
        ]
        try:
            async with asyncio.timeout(60):
                # The pool is at work: the first decodes are done, the others wait in its queue.
                await asyncio.wait(decodes, return_when=asyncio.FIRST_COMPLETED)
                assert sum(not d.done() for d in decodes) >= DECODES - 2 * IMAGES.size

                match = await book.check(7, "a z e b r a crossing")
                waiting_after_rule = sum(not d.done() for d in decodes)

                async with open_session(FetchPolicy.build(None, [f"localhost:{named_host}"])) as session:
                    fetched = await fetch_public(
                        session, f"http://localhost:{named_host}/", max_bytes=100, timeout=30
                    )
                waiting_after_look_up = sum(not d.done() for d in decodes)
                await IMAGES.run(note_thread)  # behind every queued decode: runs last
                reduced = await asyncio.gather(*decodes)
        finally:
            for task in decodes:
                task.cancel()
    finally:
        await store.close()
    assert match is not None and match is not NOT_CHECKED_IN_TIME and match.rule is not None
    assert fetched.data == b"hello"
    # Both answered while most decodes still waited: neither queued behind them.
    assert waiting_after_rule >= DECODES // 2, waiting_after_rule
    assert waiting_after_look_up >= DECODES // 2, waiting_after_look_up
    assert all(r.data is not None and len(r.data) < len(data) * 2 for r in reduced)
    assert all(name.startswith("imagine-images") for name in threads_used)


async def test_names_are_looked_up_on_the_dns_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    original = socket.getaddrinfo

    def noting_the_thread(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", noting_the_thread)
    resolver = PoolResolver()
    [answer] = await resolver.resolve("localhost", 80, socket.AF_INET)
    assert (answer["host"], answer["port"], answer["hostname"]) == ("127.0.0.1", 80, "localhost")
    assert len(seen) == 1 and all(name.startswith("imagine-dns") for name in seen)
