"""The web gallery in a real browser (headless chromium through Playwright): sign in through the fake
Discord's OAuth2, browse My images with infinite scroll, search in English and Chinese, filter, open an
image by keyboard, read it in Chinese, and the attacks: other members' images, forged sign-ins,
forms without their CSRF token, and secrets in pages.

Each scenario is a coroutine run on the web world's loop (tests/web_harness.py), where the browser
lives; the test functions themselves are plain functions with a deadline on that run."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tests.web_harness import MY_IMAGES, WebWorld

TIMEOUT_MS = 10_000
SCENARIO_DEADLINE = 60.0


@contextlib.asynccontextmanager
async def new_page(browser: Any, locale: str = "en-US") -> AsyncIterator[Any]:
    """A fresh browser context (no cookies, no cache) and a page in it."""
    context = await browser.new_context(locale=locale)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


def play(
    world: WebWorld, browser: Any, scenario: Callable[[Any], Awaitable[None]], locale: str = "en-US"
) -> None:
    async def run() -> None:
        async with new_page(browser, locale) as page:
            await scenario(page)

    world.run(run(), timeout=SCENARIO_DEADLINE)


async def sign_in(page: Any, world: WebWorld, as_user: int | None = None) -> None:
    world.fake.oauth.signed_in_as = as_user
    await page.goto(world.url("/me"))
    await page.wait_for_url(re.compile(r"/login$"))
    await page.get_by_role("link", name="Sign in with Discord").click()
    await page.wait_for_url(re.compile(r"/me$"))


async def card_ids(page: Any) -> list[int]:
    ids = await page.locator("#gallery a[data-image-id]").evaluate_all(
        "links => links.map(a => a.dataset.imageId)"
    )
    return [int(x) for x in ids]


def test_sign_in_browse_scroll_and_open_an_image_by_keyboard(browser: Any, web_world: WebWorld) -> None:
    seeded, fake = web_world.seeded, web_world.fake

    async def scenario(page: Any) -> None:
        await sign_in(page, web_world)
        assert await page.locator("header .who").inner_text() == "Signed in as Plain-Pat"
        # Newest first (by job id: the order they were made in), the private one (made last) too.
        newest_first = sorted([*seeded.mine, seeded.private_mine], reverse=True)
        assert await card_ids(page) == newest_first[:30]
        # Every image has its prompt as alt text.
        alts = await page.locator("#gallery img").evaluate_all("imgs => imgs.map(i => i.alt)")
        captions = await page.locator("#gallery .caption").all_inner_texts()
        assert all(alts) and alts == captions
        # Infinite scroll: the next keyset page arrives when the end of the list comes into view.
        await page.locator("#gallery a.more").scroll_into_view_if_needed()
        await page.locator("#gallery .end").wait_for()
        assert await card_ids(page) == newest_first
        assert seeded.theirs not in await card_ids(page)
        # The pictures load through the gallery (same origin, allowed by the Content-Security-Policy).
        first = page.locator("#gallery img").first
        await first.scroll_into_view_if_needed()
        await page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=await first.element_handle()
        )
        # Open the newest public image by keyboard: focus its link, Enter.
        target = seeded.mine[-1]
        await page.locator(f'a[data-image-id="{target}"]').focus()
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(rf"/images/{target}$"))
        n = MY_IMAGES - 1
        prompt = await page.locator("#prompt").inner_text()
        assert prompt.endswith(f"#{n}")
        assert await page.locator("img.full").get_attribute("alt") == prompt
        assert await page.locator("#aspect").inner_text() == ("16:9" if n % 4 == 1 else "1:1")
        assert await page.locator("#where").inner_text() == "Imagine Test Guild"
        link = await page.locator("#discord-link").get_attribute("href")
        assert link == f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{900_000 + n}"
        command = await page.locator("#command").input_value()
        assert command.startswith(f"/imagine prompt:{prompt}") and "aspect_ratio:" in command
        await page.locator("#copy").focus()
        await page.keyboard.press("Enter")
        await page.locator("#copy-status").filter(has_text="Copied").wait_for()
        await page.locator("#back").click()
        await page.wait_for_url(re.compile(r"/me$"))

    play(web_world, browser, scenario)


def test_search_in_english_and_chinese_and_filter(browser: Any, web_world: WebWorld) -> None:
    seeded = web_world.seeded

    async def scenario(page: Any) -> None:
        await sign_in(page, web_world)
        await page.locator("#q").fill("watercolor")
        await page.locator("#apply").click()
        await page.wait_for_url(re.compile(r"q=watercolor"))
        assert await card_ids(page) == list(reversed(seeded.watercolor))
        await page.locator("#q").fill("水彩")
        await page.locator("#q").press("Enter")
        await page.wait_for_url(re.compile(r"q=%E6%B0%B4%E5%BD%A9"))
        assert await card_ids(page) == list(reversed(seeded.chinese))
        assert seeded.theirs not in await card_ids(page)
        # A server, personal use, a shape and a style, and dates.
        await page.goto(web_world.url("/me"))
        await page.locator("#server").select_option(label="Second Home")
        await page.locator("#apply").click()
        await page.wait_for_url(re.compile(r"server="))
        assert await card_ids(page) == list(reversed(seeded.other_server))
        await page.locator("#server").select_option(label="Personal use")
        await page.locator("#apply").click()
        await page.wait_for_url(re.compile(r"server=personal"))
        assert await card_ids(page) == list(reversed(seeded.personal))
        await page.goto(web_world.url("/me?aspect=16:9&style=Ink"))
        expected = [i for n, i in enumerate(seeded.mine) if n % 4 == 1 and n % 6 == 1]
        assert expected and await card_ids(page) == list(reversed(expected))
        await page.goto(web_world.url("/me"))
        await page.locator("#from").fill("2025-10-10")  # UTC days: image 1 on 10-10, image 2 on 10-11
        await page.locator("#to").fill("2025-10-11")
        await page.locator("#apply").click()
        await page.wait_for_url(re.compile(r"to=2025-10-11"))
        assert await card_ids(page) == [seeded.mine[2], seeded.mine[1]]
        await page.goto(web_world.url("/me?q=zebra"))
        assert (
            await page.locator("#empty").inner_text() == "No images match. Try other words or fewer filters."
        )

    play(web_world, browser, scenario)


def test_pages_speak_chinese_to_a_chinese_browser(browser: Any, web_world: WebWorld) -> None:
    async def scenario(page: Any) -> None:
        web_world.fake.oauth.signed_in_as = None
        await page.goto(web_world.url("/login"))
        assert await page.locator("html").get_attribute("lang") == "zh-CN"
        await page.get_by_role("link", name="使用 Discord 登录").click()
        await page.wait_for_url(re.compile(r"/me$"))
        assert await page.locator("h1").inner_text() == "我的图片"
        await page.goto(web_world.url(f"/images/{web_world.seeded.chinese[0]}"))
        assert await page.locator("#copy").inner_text() == "复制命令"
        assert "水彩" in await page.locator("#prompt").inner_text()
        await page.goto(web_world.url("/images/1234567"))
        assert await page.locator("h1").inner_text() == "未找到"

    play(web_world, browser, scenario, locale="zh-CN")


def test_a_member_never_reaches_another_members_images(browser: Any, web_world: WebWorld) -> None:
    seeded, fake = web_world.seeded, web_world.fake

    async def scenario(page: Any) -> None:
        await web_world.gallery(False)  # with the server's gallery on, its public images are for members
        await sign_in(page, web_world)
        for path in (f"/images/{seeded.theirs}", f"/images/{seeded.theirs}/picture/0"):
            response = await page.goto(web_world.url(path))
            assert response.status == 404
            assert "secret" not in await page.content()
        # The moderator signs in (same browser): my private image is mine alone, by list and by address.
        await page.context.clear_cookies()
        await sign_in(page, web_world, as_user=fake.moderator_id)
        assert await card_ids(page) == [seeded.theirs]
        for image_id in (seeded.private_mine, seeded.mine[0]):
            assert (await page.goto(web_world.url(f"/images/{image_id}"))).status == 404
            assert (await page.goto(web_world.url(f"/images/{image_id}/picture/0"))).status == 404
        assert (await page.goto(web_world.url(f"/me?server={fake.guild_id}&q=private"))).status == 200
        assert await card_ids(page) == []

    play(web_world, browser, scenario)


def test_signed_out_pages_and_forged_sign_ins(browser: Any, web_world: WebWorld) -> None:
    mine = web_world.seeded.mine[0]

    async def scenario(page: Any) -> None:
        for path in ("/me", f"/images/{mine}", f"/images/{mine}/picture/0"):
            await page.goto(web_world.url(path))
            await page.wait_for_url(re.compile(r"/login$"))
        # A callback this browser did not start (a forged state, as from an attacker's link).
        codes_before = len(web_world.fake.oauth.codes)
        response = await page.goto(web_world.url("/oauth/callback?code=stolen&state=forged"))
        assert response.status == 400
        problem = await page.locator(".problem").inner_text()
        assert problem == "Signing in with Discord did not work. Please try again."
        await page.goto(web_world.url("/me"))
        await page.wait_for_url(re.compile(r"/login$"))
        # The member pressed Cancel on Discord's page.
        web_world.fake.oauth.refuse_next = True
        await page.get_by_role("link", name="Sign in with Discord").click()
        await page.locator(".problem").wait_for()
        assert len(web_world.fake.oauth.codes) == codes_before

    play(web_world, browser, scenario)


def test_cookies_headers_csrf_and_no_secrets_in_pages(browser: Any, web_world: WebWorld) -> None:
    async def scenario(page: Any) -> None:
        await sign_in(page, web_world)
        (cookie,) = [c for c in await page.context.cookies() if c["name"] == "imagine_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]  # http PUBLIC_URL
        response = await page.goto(web_world.url(f"/images/{web_world.seeded.mine[3]}"))
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert await page.locator("script:not([src])").count() == 0
        html = await page.content()
        settings = web_world.server.settings
        assert settings.web_session_secret is not None
        for secret in (
            settings.api_key.reveal(),
            settings.web_session_secret.reveal(),
            web_world.fake.oauth.client_secret,
        ):
            assert secret not in html
        # Signing out is a form with its CSRF token; the same post without it is refused.
        refused = await page.context.request.post(web_world.url("/logout"), form={"csrf": "guessed"})
        assert refused.status == 403
        await page.goto(web_world.url("/me"))
        assert page.url.endswith("/me")  # still signed in
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(re.compile(r"/login$"))
        await page.goto(web_world.url("/me"))
        await page.wait_for_url(re.compile(r"/login$"))

    play(web_world, browser, scenario)
