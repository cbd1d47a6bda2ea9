"""Fetching result images with a cap and a content check, and fitting them under an upload limit."""

from __future__ import annotations

import io

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.adapters.media import DownloadError, download_image, fit_to_limit, sniff_type
from bot.adapters.safe_fetch import FetchPolicy, open_session
from sandbox.server import Sandbox, SandboxConfig


async def test_big_image_is_reencoded_under_the_limit() -> None:
    server = Sandbox(SandboxConfig(big_images=True, duration=0))
    base = await server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base}/xai/images",
                json={"prompt": "noise", "model": "grok-imagine-image", "aspectRatio": "1:1"},
                headers={"Authorization": "Bearer sandbox-key"},
            ) as response,
        ):
            task_id = (await response.json())["taskId"]
        data = server.image_bytes(task_id)
    finally:
        await server.stop()
    limit = 2 * 1024 * 1024
    assert len(data) > limit
    fitted = fit_to_limit(data, "image/png", limit)
    assert fitted is not None and fitted.reencoded
    assert len(fitted.data) <= limit
    with Image.open(io.BytesIO(fitted.data)) as image:
        assert image.format == "JPEG"
        assert image.size[0] >= 256


def test_small_image_is_left_alone() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10), "red").save(buffer, "PNG")
    fitted = fit_to_limit(buffer.getvalue(), "image/png", 1024 * 1024)
    assert fitted is not None and not fitted.reencoded and fitted.data == buffer.getvalue()


def test_impossible_limit_gives_none() -> None:
    buffer = io.BytesIO()
    Image.effect_noise((512, 512), 80).convert("RGB").save(buffer, "PNG")
    assert fit_to_limit(buffer.getvalue(), "image/png", 100) is None
    assert fit_to_limit(b"not an image at all" * 100, "image/png", 100) is None


def test_sniffing() -> None:
    assert sniff_type(b"\x89PNG\r\n\x1a\n...") == "image/png"
    assert sniff_type(b"RIFF1234WEBPVP8 ") == "image/webp"
    assert sniff_type(b"<html>") is None


@pytest.fixture
async def odd_server() -> object:
    app = web.Application()

    async def html(_: web.Request) -> web.Response:
        return web.Response(body=b"<html>expired</html>", content_type="image/png")

    async def huge(_: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\x89PNG\r\n\x1a\n" + b"0" * 300_000, content_type="image/png")

    async def gone(_: web.Request) -> web.Response:
        return web.Response(status=404)

    app.router.add_get("/html", html)
    app.router.add_get("/huge", huge)
    app.router.add_get("/gone", gone)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_downloads_refuse_non_images_oversize_and_errors(odd_server: str) -> None:
    # The odd server plays a public image host; what the member may read never names a status or a type.
    async with open_session(FetchPolicy.build(None, [odd_server.removeprefix("http://")])) as session:
        with pytest.raises(DownloadError, match="did not lead to an image") as refused:
            await download_image(session, f"{odd_server}/html", max_bytes=10_000)
        assert "image/png" not in str(refused.value) and "text/html" not in str(refused.value)
        with pytest.raises(DownloadError, match="larger"):
            await download_image(session, f"{odd_server}/huge", max_bytes=100_000)
        with pytest.raises(DownloadError, match="did not send it") as gone:
            await download_image(session, f"{odd_server}/gone", max_bytes=100_000)
        assert "404" not in str(gone.value) and "404" in gone.value.detail
