"""A server's gallery, thumbnails and Delete in a real browser (headless chromium through Playwright):
the gallery on and off, members of other servers kept out by id, membership checked again when it is
stale, private images and banned members' images hidden, a moderator's "Remove from gallery", videos
beside images, thumbnails served after Discord's attachment link is gone, and Delete from the web."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image

from bot.web import membership
from tests.test_web_gallery import card_ids, play, sign_in
from tests.web_harness import START, WebWorld, png


def visible_ids(world: WebWorld) -> set[int]:
    """What the test guild's gallery shows when banned members' images are hidden."""
    s = world.seeded
    mine_here = {i for i in s.mine if i not in s.other_server and i not in s.personal}
    return mine_here | {s.theirs, *s.carol_images, s.carol_video}


def test_the_server_gallery_on_and_off_and_other_servers_by_id(browser: Any, web_world: WebWorld) -> None:
    s, fake = web_world.seeded, web_world.fake
    guild = fake.guild_id

    async def scenario(page: Any) -> None:
        await web_world.gallery(False)
        await sign_in(page, web_world)
        assert (await page.goto(web_world.url(f"/servers/{guild}"))).status == 404
        assert (await page.goto(web_world.url(f"/images/{s.carol_images[0]}"))).status == 404
        await web_world.gallery(True)
        await page.context.clear_cookies()
        await sign_in(page, web_world)  # sign-in lists the member's servers whose gallery is on
        await page.get_by_role("link", name="Gallery of Imagine Test Guild").click()
        await page.wait_for_url(re.compile(rf"/servers/{guild}$"))
        assert await page.locator("h1").inner_text() == "Gallery of Imagine Test Guild"
        assert (
            await page.get_by_role("link", name="Clear", exact=True).get_attribute("href")
            == f"/servers/{guild}"
        )
        await page.locator("#gallery a.more").scroll_into_view_if_needed()
        await page.locator("#gallery .end").wait_for()
        shown = await card_ids(page)
        assert shown == sorted(shown, reverse=True)  # newest first
        removed = await removed_ids(web_world)
        assert set(shown) == visible_ids(web_world) - removed
        for hidden in (s.private_mine, s.carol_private, s.banned_image, s.elsewhere_image):
            assert hidden not in shown
        # Every picture has its prompt as alt text; the video is a <video> beside them.
        alts = await page.locator("#gallery img").evaluate_all("imgs => imgs.map(i => i.alt)")
        assert all(alts)
        assert await page.locator(f'a[data-image-id="{s.carol_video}"] video').count() == 1
        # Search the server's prompts, in Chinese too.
        await page.locator("#q").fill("纸船")
        await page.locator("#q").press("Enter")
        await page.wait_for_url(re.compile(r"q="))
        assert await card_ids(page) == [s.carol_images[1]]
        # Someone else's image, through the server's gallery: who made it, its references; no Delete.
        await page.goto(web_world.url(f"/images/{s.carol_images[0]}"))
        assert await page.locator("#maker").inner_text() == "Carol"
        assert await page.locator("#references").inner_text() == "1"
        assert await page.locator("#delete").count() == 0 and await page.locator("#remove").count() == 0
        assert await page.locator("#back").get_attribute("href") == f"/servers/{guild}"
        # Another server's gallery, by changing the id: it is on, but this member is not there.
        for path in (
            f"/servers/{s.elsewhere_id}",
            f"/images/{s.elsewhere_image}",
            f"/images/{s.elsewhere_image}/thumb/0",
            f"/images/{s.elsewhere_image}/picture/0",
            f"/images/{s.carol_private}",
            f"/servers/{s.other_server_id}",  # a member there, but its gallery is off
            "/servers/not-a-number",
        ):
            response = await page.goto(web_world.url(path))
            assert response.status == 404, path
            assert "secret" not in await page.content()
        # Off again: gone for members, at once.
        await web_world.gallery(False)
        assert (await page.goto(web_world.url(f"/servers/{guild}"))).status == 404
        # (asked without the browser's cache, which keeps what this member saw for an hour)
        gone = await page.context.request.get(web_world.url(f"/images/{s.carol_images[0]}/thumb/0"))
        assert gone.status == 404
        await web_world.gallery(True)

    play(web_world, browser, scenario)


async def removed_ids(world: WebWorld) -> set[int]:
    """The test guild's images a moderator removed (as the admin log records them)."""
    entries = await world.store.settings.admin_log(world.fake.guild_id, limit=1000)
    return {int(e.target.split(":")[1]) for e in entries if e.action == "gallery_remove" and e.target}


def test_membership_is_checked_again_when_stale(browser: Any, web_world: WebWorld) -> None:
    fake = web_world.fake
    dave = fake.add_member(fake.guild_id, username="dave")

    async def scenario(page: Any) -> None:
        await web_world.gallery(True)
        await sign_in(page, web_world, as_user=dave)
        assert (await page.goto(web_world.url(f"/servers/{fake.guild_id}"))).status == 200
        # Dave leaves the server; once what sign-in said is stale, Discord is asked again.
        del fake.guilds[fake.guild_id].members[dave]
        saved = membership.MEMBERSHIP_TTL
        membership.MEMBERSHIP_TTL = 0.0
        try:
            assert (await page.goto(web_world.url(f"/servers/{fake.guild_id}"))).status == 404
            assert (await page.goto(web_world.url(f"/images/{web_world.seeded.theirs}"))).status == 404
        finally:
            membership.MEMBERSHIP_TTL = saved
        # The stale entry is gone from the session: the header no longer offers the gallery.
        await page.goto(web_world.url("/me"))
        assert await page.get_by_role("link", name="Gallery of Imagine Test Guild").count() == 0

    play(web_world, browser, scenario)


def test_banned_members_images_hidden_and_a_moderator_removes_one(browser: Any, web_world: WebWorld) -> None:
    s, fake = web_world.seeded, web_world.fake
    guild = fake.guild_id
    target = s.carol_images[2]

    async def scenario(page: Any) -> None:
        await web_world.gallery(True, hide_banned=True)
        await sign_in(page, web_world, as_user=fake.moderator_id)
        await page.goto(web_world.url(f"/servers/{guild}?q=banned"))
        assert await card_ids(page) == []
        await web_world.gallery(True, hide_banned=False)  # the moderators' choice
        await page.goto(web_world.url(f"/servers/{guild}?q=banned"))
        assert await card_ids(page) == [s.banned_image]
        await web_world.gallery(True, hide_banned=True)
        # A moderator (Manage Messages) removes an image by keyboard.
        await page.goto(web_world.url(f"/images/{target}"))
        assert await page.locator("#delete").count() == 0  # not theirs
        await page.locator("#remove").focus()
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(rf"/servers/{guild}$"))
        assert target not in await card_ids(page)
        assert (await page.goto(web_world.url(f"/images/{target}"))).status == 404
        entries = await web_world.store.settings.admin_log(guild)
        assert any(e.action == "gallery_remove" and e.target == f"job:{target}" for e in entries)
        # Its maker still has it, marked as removed; a member who is no moderator has no Remove button.
        await page.context.clear_cookies()
        await sign_in(page, web_world, as_user=s.carol)
        assert target in await card_ids(page)
        await page.goto(web_world.url(f"/images/{target}"))
        assert await page.locator("#removed").count() == 1
        await page.goto(web_world.url(f"/images/{s.carol_images[0]}"))
        assert await page.locator("#remove").count() == 0
        # And a forged removal by a member who is no moderator changes nothing.
        forged = await page.context.request.post(
            web_world.url(f"/images/{s.carol_images[0]}/remove"), form={"csrf": "x"}
        )
        assert forged.status in (403, 404)
        assert s.carol_images[0] not in await removed_ids(web_world)

    play(web_world, browser, scenario)


def test_thumbnails_are_served_after_the_attachment_link_is_gone(browser: Any, web_world: WebWorld) -> None:
    s, fake = web_world.seeded, web_world.fake
    job = s.carol_images[1]
    thumbnails = web_world.server.settings.thumbnail_path

    async def scenario(page: Any) -> None:
        await web_world.gallery(True)
        fake.expire_url(s.attachments[job])  # the link Discord gave when it was posted has lapsed
        await sign_in(page, web_world)
        await page.goto(web_world.url(f"/images/{job}"))
        full = page.locator("img.full")
        await page.wait_for_function(
            "img => img.complete && img.naturalWidth === 600", arg=await full.element_handle()
        )
        response = await page.goto(web_world.url(f"/images/{job}/thumb/0"))
        assert response.status == 200 and response.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(await response.body())) as thumb:
            assert thumb.format == "WEBP" and max(thumb.size) <= 512
        assert any(thumbnails.rglob(f"{job}-0.webp"))
        # A later view refreshes the kept link through Discord (POST /attachments/refresh-urls).
        fake.requests.clear()
        for signed in list(fake.messages[await message_of(web_world, job)]["attachments"]):
            fake.expire_url(signed["url"])
        again = await page.context.request.get(web_world.url(f"/images/{job}/picture/0"))  # not cached
        assert again.status == 200
        with Image.open(io.BytesIO(await again.body())) as picture:
            assert picture.size == (600, 400)
        assert any(r.path == "/attachments/refresh-urls" for r in fake.requests)
        html = await page.content()
        assert fake.token not in html and "hm=" not in html
        # The message itself is gone now: the thumbnail is still served, from the store.
        del fake.messages[await message_of(web_world, job)]
        response = await page.goto(web_world.url(f"/images/{job}/thumb/0"))
        assert response.status == 200 and response.headers["content-type"] == "image/webp"
        # A video's poster is the thumbnail of the image it was made from.
        await page.goto(web_world.url(f"/images/{s.carol_images[0]}/thumb/0"))
        await page.goto(web_world.url(f"/servers/{fake.guild_id}?q=drifting"))
        video = page.locator(f'a[data-image-id="{s.carol_video}"] video')
        assert await video.get_attribute("poster") == f"/images/{s.carol_video}/thumb/0"
        poster = await page.goto(web_world.url(f"/images/{s.carol_video}/thumb/0"))
        assert poster.status == 200 and poster.headers["content-type"] == "image/webp"

    play(web_world, browser, scenario)


async def message_of(world: WebWorld, job: int) -> int:
    stored = await world.store.jobs.get(job)
    assert stored is not None and stored.result_message_id is not None
    return stored.result_message_id


def test_delete_an_image_from_the_web(browser: Any, web_world: WebWorld) -> None:
    s, fake = web_world.seeded, web_world.fake
    from tests.gallery_seed import post_image

    async def seed() -> tuple[int, int]:
        message = await web_world.post_message(fake.channel_id, png((10, 200, 10), (300, 300)))
        job = await post_image(
            web_world.store, user_id=s.carol, prompt="a doomed snowman", guild_id=fake.guild_id,
            channel_id=fake.channel_id, created_at=START + 70 * DAY_, url="http://127.0.0.1:9/x.png",
            message_id=int(message["id"]),
        )  # fmt: skip
        return job, int(message["id"])

    job, message_id = web_world.run(seed())
    thumbnails = web_world.server.settings.thumbnail_path

    async def scenario(page: Any) -> None:
        await web_world.gallery(True)
        # Someone else cannot delete it, with or without a token.
        await sign_in(page, web_world)
        assert (await page.goto(web_world.url(f"/images/{job}"))).status == 200
        assert await page.locator("#delete").count() == 0
        csrf = await page.locator('input[name="csrf"]').first.input_value()
        forged = await page.context.request.post(web_world.url(f"/images/{job}/delete"), form={"csrf": csrf})
        assert forged.status == 404 and message_id in fake.messages
        # Its maker deletes it.
        await page.context.clear_cookies()
        await sign_in(page, web_world, as_user=s.carol)
        await page.goto(web_world.url(f"/images/{job}/thumb/0"))
        assert any(thumbnails.rglob(f"{job}-0.webp"))
        await page.goto(web_world.url(f"/images/{job}"))
        refused = await page.context.request.post(web_world.url(f"/images/{job}/delete"), form={"csrf": "x"})
        assert refused.status == 403 and message_id in fake.messages
        await page.locator("#delete").click()
        await page.wait_for_url(re.compile(r"/me$"))
        assert job not in await card_ids(page)
        assert message_id not in fake.messages  # gone from Discord
        assert (await page.goto(web_world.url(f"/images/{job}"))).status == 404
        assert not any(thumbnails.rglob(f"{job}-0.webp"))
        stored = await web_world.store.jobs.get(job)
        assert stored is not None and stored.result_deleted_at is not None

    play(web_world, browser, scenario)


DAY_ = 86_400.0


def test_the_server_gallery_in_chinese(browser: Any, web_world: WebWorld) -> None:
    async def scenario(page: Any) -> None:
        await web_world.gallery(True)
        web_world.fake.oauth.signed_in_as = None
        await page.goto(web_world.url("/login"))
        await page.get_by_role("link", name="使用 Discord 登录").click()
        await page.wait_for_url(re.compile(r"/me$"))
        await page.goto(web_world.url(f"/servers/{web_world.fake.guild_id}"))
        assert await page.locator("h1").inner_text() == "Imagine Test Guild 的画廊"
        await page.goto(web_world.url(f"/images/{web_world.seeded.carol_images[0]}"))
        assert await page.locator("#maker").inner_text() == "Carol"

    play(web_world, browser, scenario, locale="zh-CN")
