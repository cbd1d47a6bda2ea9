"""`make screenshots`: the README's pictures of the web gallery, taken with the tests' own fixtures (the
fake Discord, a seeded store, the gallery's server) and browser (Debian's chromium through Playwright).

    python -m tests.make_screenshots docs/screenshots

Writes gallery-en.png and gallery-zh-CN.png (My images), server-gallery.png, image-page.png, and the
dashboard's settings (dashboard.png) and statistics (dashboard-stats.png) pages. The seeded images are
drawn here: soft gradients with a few shapes, so the pages look like pages of pictures."""

from __future__ import annotations

import argparse
import io
import math
import random
import re
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image, ImageDraw, ImageFilter

from tests.dashboard_seed import seed_usage
from tests.web_harness import WebWorld

VIEWPORT = {"width": 1280, "height": 860}
TIMEOUT_MS = 20_000


def painting(seed: int, size: tuple[int, int] = (512, 512)) -> bytes:
    """A small abstract picture: a two-colour gradient sky, a sun, and hills."""
    rng = random.Random(seed)
    width, height = size
    top = tuple(rng.randrange(40, 200) for _ in range(3))
    bottom = tuple(rng.randrange(120, 255) for _ in range(3))
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        mix = y / height
        draw.line(
            [(0, y), (width, y)], fill=tuple(int(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True))
        )
    sun = (rng.randrange(60, width - 60), rng.randrange(40, height // 2))
    radius = rng.randrange(30, 70)
    draw.ellipse([sun[0] - radius, sun[1] - radius, sun[0] + radius, sun[1] + radius], fill=(255, 236, 170))
    for layer in range(3):
        shade = tuple(max(0, c - 50 * (layer + 1)) for c in bottom)
        base = height * (0.55 + 0.13 * layer)
        phase, wave = rng.random() * 6.28, rng.randrange(20, 60)
        points = [(x, base + wave * math.sin(x / (60 + 30 * layer) + phase)) for x in range(0, width + 8, 8)]
        draw.polygon([(0, height), *points, (width, height)], fill=shade)
    out = io.BytesIO()
    image.filter(ImageFilter.SMOOTH).save(out, "PNG")
    return out.getvalue()


class ScreenshotWorld(WebWorld):
    """The tests' world, with pictures worth looking at."""

    async def _picture(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return web.Response(body=painting(int(name) if name.isdigit() else 0), content_type="image/png")

    async def post_message(self, channel_id: int, data: bytes, filename: str = "image.png") -> dict[str, Any]:
        self._painted = getattr(self, "_painted", 100) + 1
        return await super().post_message(channel_id, painting(self._painted, (600, 400)), filename)


def busy_month(rng: random.Random) -> list[tuple[str, int, int]]:
    """Finished images over the last 30 days for the statistics' screenshot: (member, days ago,
    seconds to image), busier at weekends."""
    month = []
    for ago in range(29, -1, -1):  # oldest first: a day counts the rows from its start on
        for _ in range(rng.randrange(2, 9) + (5 if ago % 7 in (0, 1) else 0)):
            month.append((rng.choice(("pat", "pat", "mia")), ago, rng.randrange(8, 70)))
    return month


async def pictures_loaded(page: Any) -> None:
    await page.wait_for_function(
        "() => [...document.images].filter(i => i.getBoundingClientRect().top < innerHeight)"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=TIMEOUT_MS,
    )


async def sign_in(page: Any, world: WebWorld, as_user: int | None = None) -> None:
    world.fake.oauth.signed_in_as = as_user
    await page.goto(world.url("/login/discord"))
    await page.wait_for_url(re.compile(r"/me$"))


async def signed_in(chromium: Any, world: WebWorld, user_id: int) -> tuple[Any, Any]:
    """A new English browser context and page, signed in as `user_id`."""
    context = await chromium.new_context(locale="en-US", viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await sign_in(page, world, as_user=user_id)
    return context, page


async def shoot(world: WebWorld, folder: Path) -> list[Path]:
    playwright, chromium = await world.start_browser()
    written: list[Path] = []
    try:
        await world.gallery(True)
        for locale, name in (("en-US", "gallery-en.png"), ("zh-CN", "gallery-zh-CN.png")):
            context = await chromium.new_context(locale=locale, viewport=VIEWPORT)
            context.set_default_timeout(TIMEOUT_MS)
            page = await context.new_page()
            await sign_in(page, world)
            await pictures_loaded(page)
            await page.screenshot(path=folder / name)
            written.append(folder / name)
            if locale == "en-US":
                await page.goto(world.url(f"/servers/{world.fake.guild_id}"))
                await pictures_loaded(page)
                await page.screenshot(path=folder / "server-gallery.png")
                written.append(folder / "server-gallery.png")
                await page.goto(world.url(f"/images/{world.seeded.mine[-3]}"))
                await pictures_loaded(page)
                await page.screenshot(path=folder / "image-page.png", full_page=True)
                written.append(folder / "image-page.png")
            await context.close()
        # The dashboard as the server's owner sees it: its settings forms, and its statistics.
        context, page = await signed_in(chromium, world, world.fake.owner_id)
        response = await page.goto(world.url(f"/dashboard/{world.fake.guild_id}"))
        assert response is not None and response.status == 200, response
        await page.screenshot(path=folder / "dashboard.png")
        written.append(folder / "dashboard.png")
        await context.close()
        # Its statistics, for a server with a month of use (its server admin is the fake's moderator).
        busy = await seed_usage(world, "Pixel Painters", finished=busy_month(random.Random(7)))
        context, page = await signed_in(chromium, world, world.fake.moderator_id)
        response = await page.goto(world.url(f"/dashboard/{busy.guild_id}/stats"))
        assert response is not None and response.status == 200, response
        await page.screenshot(path=folder / "dashboard-stats.png", full_page=True)
        written.append(folder / "dashboard-stats.png")
        await context.close()
    finally:
        await world.stop_browser(playwright, chromium)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", default=Path("docs/screenshots"))
    folder: Path = parser.parse_args().folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imagine-screenshots-") as root:
        world = ScreenshotWorld(Path(root))
        try:
            written = world.run(shoot(world, folder), timeout=180)
        finally:
            world.close()
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
