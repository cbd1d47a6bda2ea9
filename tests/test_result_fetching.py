"""What the bot fetches for a finished job, end to end: the real bot against the fake Discord and the
sandbox, whose results point at hosts on loopback. One "public" host is allowed through RESULT_HOSTS
(tests have nothing but loopback); every other loopback address or port plays an internal host."""

from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import replace

from PIL import Image

from bot.core.models import JobStatus
from tests.bot_harness import World, wait_for_job
from tests.helpers import FAST_RUNNER, ImageHost


def said_to_discord(world: World) -> str:
    """Everything the bot sent to Discord: message contents, edits, embeds, file names."""
    return "\n".join(
        json.dumps(r.json) for r in world.fake.requests if r.method != "GET" and r.json is not None
    )


async def test_internal_results_are_neither_fetched_nor_named(world: World) -> None:
    async with (
        ImageHost() as public,
        ImageHost() as internal,
        ImageHost("127.0.0.2") as internal2,
        ImageHost("::1") as internal6,
    ):
        world.sandbox.force_next(
            "completed",
            result={
                "images": [
                    internal.url("/a.png"),
                    internal2.url("/b.png"),
                    internal6.url("/c.png"),
                    "http://169.254.169.254/latest/meta-data/iam/",
                    f"http://localhost:{internal.port}/d.png",
                    public.url(f"/redirect?to={internal.url('/e.png')}"),
                    public.url("/loop"),
                    public.url("/img.png"),
                ]
            },
        )
        hosts = (f"127.0.0.1:{world.fake.port}", public.origin)
        async with world.bot(result_hosts=hosts) as bot:
            await world.fake.invoke_slash("imagine", {"prompt": "look inside"})
            job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
    assert internal.hits == internal2.hits == internal6.hits == []
    # A refused redirect or a loop is not tried again: one request, or the loop's four, not three times that.
    assert public.hits.count("/loop") == 4
    assert sum(hit.startswith("/redirect") for hit in public.hits) == 1
    assert job.status is JobStatus.DELIVERED
    [post] = world.bot_posts()
    assert len(post.files) == 1  # the one public image
    said = said_to_discord(world)
    for secret in (internal.origin, internal2.host, "::1", "169.254", "localhost", "/e.png", "HTTP 30"):
        assert secret not in said, secret
    # The public link that only redirected in a loop may be shown, with a plain reason.
    assert "redirected too often" in post.json["content"]


async def test_only_internal_results_end_with_a_plain_message(world: World) -> None:
    async with ImageHost() as internal:
        world.sandbox.force_next("completed", result={"images": [internal.url("/only.png")]})
        async with world.bot() as bot:
            await world.fake.invoke_slash("imagine", {"prompt": "nothing for you"})
            await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
    assert internal.hits == []
    said = said_to_discord(world)
    assert "could not be downloaded" in said
    assert internal.origin not in said and str(internal.port) not in said


def _jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "navy").save(buffer, "PNG")
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes claiming width x height pixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


async def test_images_over_the_pixel_limit_are_reduced_or_refused_plainly(world: World) -> None:
    async with ImageHost() as public:
        public.files = {
            "wide.jpg": _jpeg((2400, 2000)),  # 4.8 MP: JPEG scales down while decoding
            "wide.png": _png((1300, 1000)),  # 1.3 MP: a PNG cannot, so it is refused
            "bomb.png": png_declaring(100_000, 100_000),
        }
        world.sandbox.force_next(
            "completed", result={"images": [public.url(f"/file/{name}") for name in public.files]}
        )
        hosts = (f"127.0.0.1:{world.fake.port}", public.origin)
        async with world.bot(replace(FAST_RUNNER, max_result_pixels=1_000_000), result_hosts=hosts) as bot:
            await world.fake.invoke_slash("imagine", {"prompt": "too many pixels"})
            await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
    [post] = world.bot_posts()
    [upload] = post.files
    with Image.open(io.BytesIO(upload.data)) as image:
        assert image.format == "JPEG"
        assert image.size[0] * image.size[1] <= 1_000_000
        assert image.size == (600, 500)  # a quarter of each side: the largest scale under the limit
    content = post.json["content"]
    assert "1300×1000 pixels" in content and "1 megapixels at most" in content
    assert "far larger in pixels" in content  # the bomb: not even its claimed size is believed
