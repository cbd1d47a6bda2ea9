"""The moderators' dashboard in a real browser (headless chromium through Playwright), on the shared
web world (tests/web_harness.py): who may open which server's dashboard and change what, the forms going
through the commands' store calls into admin_log and the mod-log channel, the prompt tester, the charts
and their CSV, and the attacks: plain members, moderators posting admin forms, other servers' ids, forms
without their CSRF token, a role taken away after sign-in. The change seen by /usage through the real
bot is in tests/test_web_dashboard_bot.py."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from pathlib import Path
from typing import Any

from bot.web.guard import CSRF_FIELD
from testing.fake_discord import MANAGE_GUILD
from tests.dashboard_seed import seed_usage
from tests.test_web_gallery import new_page, play, sign_in
from tests.web_harness import WebWorld


async def open_dashboard(page: Any, world: WebWorld, user: int, guild: int) -> None:
    await sign_in(page, world, as_user=user)
    await page.goto(world.url("/dashboard"))
    await page.get_by_role("link", name=world.fake.guilds[guild].name, exact=True).click()
    await page.wait_for_url(re.compile(rf"/dashboard/{guild}$"))


async def csrf_of(page: Any) -> str:
    return str(await page.locator(f"input[name={CSRF_FIELD}]").first.get_attribute("value"))


def test_a_server_admin_changes_limits_rules_and_bans(browser: Any, web_world: WebWorld) -> None:
    fake, store = web_world.fake, web_world.store
    guild = fake.guild_id
    modlog = fake.add_channel(guild, "mod-log-admin")

    async def scenario(page: Any) -> None:
        await open_dashboard(page, web_world, fake.moderator_id, guild)
        assert "server admin" in await page.locator(".role-note").inner_text()
        # The mod-log channel: the server's text channels, from Discord.
        await page.select_option("#modlog", str(modlog))
        await page.locator("#form-modlog button").click()
        await page.locator("#flash").wait_for()
        assert "The mod-log is now #mod-log-admin" in await page.locator("#flash").inner_text()
        # The server's daily limit.
        await page.fill("#server-limit", "4")
        await page.locator("#form-server-limit button").click()
        await page.wait_for_url(re.compile(rf"/dashboard/{guild}$"))
        flash = await page.locator("#flash").inner_text()
        assert "The server's daily limit is now 4 a day" in flash
        assert "4 a day" in await page.locator("#now-server-limit").inner_text()
        # A value the command would refuse is refused here too, and nothing changes.
        await page.fill("#running", "50")
        await page.locator("#running").evaluate("e => e.removeAttribute('max')")
        await page.locator("#form-running button").click()
        assert "must be from 1 to 20" in await page.locator("#flash.problem").inner_text()
        # A prompt rule, then the tester with the same rule book as /imagine.
        await page.get_by_role("link", name="Prompt rules and styles").click()
        await page.fill("#rule-pattern", "forbidden fruit")
        await page.locator("#form-rule-add button").click()
        assert "Added prompt rule #" in await page.locator("#flash").inner_text()
        await page.fill("#test-prompt", "a bowl of FORBIDDEN   fruit")
        await page.locator("#form-test-prompt button").click()
        assert "Refused: it matches rule #" in await page.locator("#test-result").inner_text()
        await page.fill("#test-prompt", "a bowl of apples")
        await page.locator("#form-test-prompt button").click()
        assert "Allowed" in await page.locator("#test-result").inner_text()
        # A ban by user id, shown with the member's name, and lifted again.
        await page.get_by_role("link", name="Members").click()
        await page.fill("#ban-member", str(fake.user_id))
        await page.fill("#ban-reason", "spam")
        await page.fill("#ban-duration", "2d")
        await page.locator("#form-ban button").click()
        assert (
            "@Plain-Pat cannot use the image bot in this server for 2 days"
            in await page.locator("#flash").inner_text()
        )
        assert "Plain-Pat" in await page.locator("#bans").inner_text()
        await page.locator("#bans tr", has_text="Plain-Pat").locator("button").click()
        assert "can use the image bot again" in await page.locator("#flash").inner_text()
        await page.fill("#ban-member", "12345")
        await page.locator("#form-ban button").click()
        assert "There is no Discord member with the id 12345" in await page.locator("#flash").inner_text()

    play(web_world, browser, scenario)

    async def check() -> None:
        policy = await store.settings.guild_policy(guild)
        assert policy.default_quota == 4 and policy.max_running != 50
        entries = await store.settings.admin_log(guild, 20)
        actions = [e.action for e in reversed(entries) if e.actor_id == fake.moderator_id]
        assert actions[-5:] == ["policy", "policy", "rule_add", "ban", "unban"]
        # The gallery's seed bans a member of its own; Plain-Pat's ban was lifted.
        assert fake.user_id not in {b.user_id for b in await store.settings.bans(guild, time.time())}
        # Every change also went to the mod-log channel, with a mention that pings no one.
        posts = [r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{modlog}/messages"]
        texts = [r.json["content"] for r in posts]
        assert len(texts) == 5
        assert all(t.startswith(f"🛠️ <@{fake.moderator_id}> on the web dashboard: ") for t in texts)
        assert "The server's daily limit is now 4 a day" in texts[1]
        assert f"<@{fake.user_id}> cannot use the image bot" in texts[3]
        assert all(r.json["allowed_mentions"] == {"parse": []} for r in posts)
        await store.settings.update_policy(guild, fake.owner_id, time.time(), modlog_channel_id=None)

    web_world.run(check())


def test_a_plain_member_sees_no_dashboard(browser: Any, web_world: WebWorld) -> None:
    fake = web_world.fake

    async def scenario(page: Any) -> None:
        await sign_in(page, web_world, as_user=fake.user_id)
        await page.goto(web_world.url("/dashboard"))
        assert "None of your servers with the bot" in await page.locator("#no-servers").inner_text()
        for path in ("", "/members", "/rules", "/stats", "/stats/images-per-day.csv"):
            response = await page.goto(web_world.url(f"/dashboard/{fake.guild_id}{path}"))
            assert response.status == 403
            assert await page.locator("h1").inner_text() == "No access"
        csrf = await csrf_of(page)
        answer = await page.request.post(
            web_world.url(f"/dashboard/{fake.guild_id}/change/server-limit"),
            form={CSRF_FIELD: csrf, "limit": "999"},
        )
        assert answer.status == 403

    play(web_world, browser, scenario)
    policy = web_world.run(web_world.store.settings.guild_policy(fake.guild_id))
    assert policy.default_quota != 999


def test_a_moderator_reads_but_admin_forms_are_refused(browser: Any, web_world: WebWorld) -> None:
    fake, store = web_world.fake, web_world.store
    guild = fake.guild_id
    before = web_world.run(store.settings.guild_policy(guild))

    async def scenario(page: Any) -> None:
        await open_dashboard(page, web_world, web_world.helper_id, guild)
        assert "moderator" in await page.locator(".role-note").inner_text()
        assert await page.locator("#read-only").is_visible()
        assert await page.locator("form.change").count() == 0
        # The tester changes nothing: moderators may use it.
        await page.get_by_role("link", name="Prompt rules and styles").click()
        assert await page.locator("#form-rule-add").count() == 0
        await page.fill("#test-prompt", "a quiet harbour")
        await page.locator("#form-test-prompt button").click()
        assert "Allowed" in await page.locator("#test-result").inner_text()
        # A form the page did not offer, posted anyway with a valid token: refused on the server.
        csrf = await csrf_of(page)
        for change, form in (
            ("server-limit", {"limit": "77"}),
            ("ban", {"member": str(fake.user_id)}),
            ("rule-add", {"kind": "word", "pattern": "harbour"}),
        ):
            answer = await page.request.post(
                web_world.url(f"/dashboard/{guild}/change/{change}"), form={CSRF_FIELD: csrf, **form}
            )
            assert answer.status == 403
            assert "Only server admins (Manage Server) can change this" in await answer.text()
        await page.get_by_role("link", name="Statistics").click()
        assert await page.locator("#chart-images-per-day h2").is_visible()

    play(web_world, browser, scenario)

    async def check() -> None:
        after = await store.settings.guild_policy(guild)
        assert after.default_quota == before.default_quota
        assert fake.user_id not in {b.user_id for b in await store.settings.bans(guild, time.time())}
        assert all(r.pattern != "harbour" for r in await store.settings.rules(guild))

    web_world.run(check())


def test_another_servers_id_and_forms_without_csrf_are_refused(browser: Any, web_world: WebWorld) -> None:
    fake, store = web_world.fake, web_world.store
    other = web_world.seeded.other_server_id  # the moderator is not even a member there

    async def scenario(page: Any) -> None:
        await open_dashboard(page, web_world, fake.moderator_id, fake.guild_id)
        csrf = await csrf_of(page)
        for path in (f"/dashboard/{other}", f"/dashboard/{other}/stats", "/dashboard/1"):
            response = await page.goto(web_world.url(path))
            assert response.status == 403
        answer = await page.request.post(
            web_world.url(f"/dashboard/{other}/change/server-limit"), form={CSRF_FIELD: csrf, "limit": "55"}
        )
        assert answer.status == 403
        # Without the CSRF token, or with another one: refused before anything is read.
        for form in ({"limit": "66"}, {"limit": "66", CSRF_FIELD: "forged"}):
            answer = await page.request.post(
                web_world.url(f"/dashboard/{fake.guild_id}/change/server-limit"), form=form
            )
            assert answer.status == 403
            assert "This form has expired" in await answer.text()

    play(web_world, browser, scenario)

    async def check() -> None:
        assert (await store.settings.guild_policy(other)).default_quota != 55
        assert (await store.settings.guild_policy(fake.guild_id)).default_quota != 66

    web_world.run(check())


def test_a_role_taken_away_after_sign_in_is_refused_at_the_next_change(
    browser: Any, web_world: WebWorld
) -> None:
    fake, store = web_world.fake, web_world.store
    guild = fake.guild_id
    boss = fake.add_member(guild, username="boss-bo", roles=[fake.add_role(guild, "Boss", MANAGE_GUILD)])

    async def scenario(page: Any) -> None:
        await open_dashboard(page, web_world, boss, guild)
        await page.fill("#cooldown", "33")
        fake.guilds[guild].members[boss].roles.clear()  # demoted in Discord while the page is open
        await page.locator("#form-cooldown button").click()
        assert await page.locator("h1").inner_text() == "No access"
        response = await page.goto(web_world.url(f"/dashboard/{guild}"))
        assert response.status == 403

    play(web_world, browser, scenario)
    assert web_world.run(store.settings.guild_policy(guild)).cooldown_seconds != 33


# -- statistics -----------------------------------------------------------------------------------------


async def downloaded_text(download: Any) -> str:
    return await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")


def test_statistics_charts_and_their_csv(browser: Any, web_world: WebWorld) -> None:
    fake = web_world.fake
    seeded = web_world.run(seed_usage(web_world))
    guild, made = seeded.guild_id, seeded.made

    async def scenario(page: Any) -> None:
        await open_dashboard(page, web_world, fake.moderator_id, guild)
        await page.get_by_role("link", name="Statistics").click()
        per_day = page.locator("#chart-images-per-day")
        assert "6 images in 30 days" in await per_day.inner_text()
        assert await per_day.locator("svg rect.bar").count() == 30
        by_member = await page.locator("#chart-images-by-member svg").text_content()
        assert "Plain-Pat" in by_member and "Mod-Mia" in by_member
        assert "@Artists" in await page.locator("#chart-images-by-role svg").text_content()
        assert "cooldown" in await page.locator("#chart-refusals svg").text_content()
        failures = await page.locator("#chart-failures svg").text_content()
        assert "The image service refused this request: the prompt was flagged" in failures
        assert "The image service finished but returned no image." in failures
        quota = await page.locator("#chart-quota-today svg").text_content()
        assert "Plain-Pat" in quota and "2 / 10" in quota  # today's counted uses of the limit
        # Each chart's CSV, downloaded as the browser does.
        async with page.expect_download() as download_info:
            await page.locator("#chart-images-per-day a.csv").click()
        download = await download_info.value
        assert download.suggested_filename == f"images-per-day-{guild}-30d.csv"
        rows = list(csv.reader(io.StringIO(await downloaded_text(download))))
        assert rows[0] == ["day", "images"] and len(rows) == 31
        assert sum(int(r[1]) for r in rows[1:]) == 6
        async with page.expect_download() as download_info:
            await page.locator("#chart-images-by-member a.csv").click()
        rows = list(csv.reader(io.StringIO(await downloaded_text(await download_info.value))))
        assert rows[0] == ["member_id", "member", "images"]
        assert {r[0]: int(r[2]) for r in rows[1:]} == {
            str(fake.user_id): made["pat"],
            str(fake.moderator_id): made["mia"],
        }
        answer = await page.request.get(web_world.url(f"/dashboard/{guild}/stats/failures.csv?days=7"))
        assert answer.headers["content-type"].startswith("text/csv")
        assert "The image service finished but returned no image.,1" in await answer.text()

    play(web_world, browser, scenario)


def test_the_dashboard_speaks_chinese(browser: Any, web_world: WebWorld) -> None:
    fake = web_world.fake

    async def scenario(page: Any) -> None:
        fake.oauth.signed_in_as = fake.moderator_id
        await page.goto(web_world.url("/login"))
        await page.locator("#sign-in").click()
        await page.wait_for_url(re.compile(r"/me$"))
        await page.goto(web_world.url(f"/dashboard/{fake.guild_id}/stats"))
        assert await page.locator("html").get_attribute("lang") == "zh-CN"
        text = await page.locator("main").inner_text()
        assert "统计" in text and "下载 CSV" in text

    async def run() -> None:
        async with new_page(browser, "zh-CN") as page:
            await scenario(page)

    web_world.run(run(), timeout=60)


def test_no_secret_in_dashboard_pages(browser: Any, web_world: WebWorld) -> None:
    fake = web_world.fake
    settings = web_world.server.settings

    async def scenario(page: Any) -> None:
        await open_dashboard(page, web_world, fake.moderator_id, fake.guild_id)
        pages = []
        for path in ("", "/members", "/rules", "/stats"):
            await page.goto(web_world.url(f"/dashboard/{fake.guild_id}{path}"))
            pages.append(await page.content())
        for secret in (fake.token, settings.api_key.reveal() if settings.api_key else "never"):
            assert all(secret not in html for html in pages)

    play(web_world, browser, scenario)


def test_discord_down_busy_or_refusing_the_mod_log(browser: Any, web_world: WebWorld) -> None:
    fake, store = web_world.fake, web_world.store
    guild = fake.guild_id
    modlog = fake.add_channel(guild, "mod-log-closed")

    async def scenario(page: Any) -> None:
        await open_dashboard(page, web_world, fake.moderator_id, guild)
        # Discord failing the role check before a change: a friendly page, and nothing changed.
        fake.fail_route("GET", rf"/guilds/{guild}/members/{fake.moderator_id}", 502)
        await page.fill("#running", "7")
        await page.locator("#form-running button").click()
        assert await page.locator("h1").inner_text() == "Discord did not answer"
        assert "Traceback" not in await page.content()
        # A short rate limit is waited out and the change made.
        await page.goto(web_world.url(f"/dashboard/{guild}"))
        fake.rate_limit_once("GET", rf"/guilds/{guild}/members/{fake.moderator_id}")
        await page.fill("#running", "6")
        await page.locator("#form-running button").click()
        assert "now have 6 images running at once" in await page.locator("#flash").inner_text()
        # A mod-log channel the bot may not post in costs the post only.
        await store.settings.update_policy(guild, fake.owner_id, time.time(), modlog_channel_id=modlog)
        fake.forbid_channel_posts(modlog)
        await page.fill("#running", "5")
        await page.locator("#form-running button").click()
        assert "now have 5 images running at once" in await page.locator("#flash").inner_text()

    try:
        play(web_world, browser, scenario)
    finally:
        fake.clear_faults()

    async def check() -> None:
        assert (await store.settings.guild_policy(guild)).max_running == 5
        assert (await store.settings.admin_log(guild, 1))[0].details == {"max_running": 5}
        await store.settings.update_policy(guild, fake.owner_id, time.time(), modlog_channel_id=None)

    web_world.run(check())


def test_without_the_bot_token_the_dashboard_says_so(browser: Any, web_world: WebWorld) -> None:
    server = web_world.run(web_world.start_server(discord_token=None))

    async def scenario(page: Any) -> None:
        web_world.fake.oauth.signed_in_as = web_world.fake.moderator_id
        await page.goto(web_world.url("/login", server))
        await page.get_by_role("link", name="Sign in with Discord").click()
        await page.wait_for_url(re.compile(r"/me$"))
        await page.goto(web_world.url("/dashboard", server))
        assert "needs the bot's token (DISCORD_TOKEN)" in await page.locator("main").inner_text()
        response = await page.goto(web_world.url(f"/dashboard/{web_world.fake.guild_id}", server))
        assert response.status == 503

    play(web_world, browser, scenario)


def test_count_limits_for_the_server_a_role_and_a_member(browser: Any, web_world: WebWorld) -> None:
    fake, store = web_world.fake, web_world.store
    guild = fake.guild_id

    async def scenario(page: Any) -> None:
        await open_dashboard(page, web_world, fake.moderator_id, guild)
        await page.fill("#count-limit", "2")
        await page.locator("#form-count-limit button").click()
        assert (
            "Members may now ask for up to 2 images per request" in await page.locator("#flash").inner_text()
        )
        assert await page.locator("#now-count-limit").inner_text() == "2"
        await page.get_by_role("link", name="Members").click()
        await page.select_option("#rc-role", str(web_world.helper_role_id))
        await page.fill("#rc-limit", "3")
        await page.locator("#form-role-count-limit button").click()
        assert (
            "Members of @Helper may now ask for up to 3 images" in await page.locator("#flash").inner_text()
        )
        assert "@Helper" in await page.locator("#role-count-limits").inner_text()
        await page.fill("#mc-member", str(fake.user_id))
        await page.fill("#mc-limit", "1")
        await page.locator("#form-member-count-limit button").click()
        assert (
            "@Plain-Pat may now ask for up to 1 image per request"
            in await page.locator("#flash").inner_text()
        )

    play(web_world, browser, scenario)

    async def check() -> None:
        assert (await store.settings.guild_policy(guild)).count_limit == 2
        assert (await store.settings.role_count_limits(guild)) == {web_world.helper_role_id: 3}
        assert await store.settings.user_count_limit(guild, fake.user_id) == 1
        actions = [e.action for e in await store.settings.admin_log(guild, 3)]
        assert actions == ["count_limit_user", "count_limit_role", "policy"]
        await store.settings.update_policy(guild, fake.owner_id, time.time(), count_limit=None)
        await store.settings.set_role_count_limit(
            guild, web_world.helper_role_id, None, fake.owner_id, time.time()
        )
        await store.settings.set_user_count_limit(guild, fake.user_id, None, fake.owner_id, time.time())

    web_world.run(check())


def test_videos_and_the_server_gallery_from_the_settings_page(browser: Any, web_world: WebWorld) -> None:
    fake, store = web_world.fake, web_world.store
    guild = fake.guild_id
    before = web_world.run(store.settings.guild_policy(guild))
    was = web_world.run(store.gallery.switches(guild))

    async def scenario(page: Any) -> None:
        await open_dashboard(page, web_world, fake.moderator_id, guild)
        # What a second of video counts as, with the command's bounds and its sentence.
        await page.fill("#video-rate", "1.5")
        await page.locator("#form-video-rate button").click()
        assert (
            "A second of video now counts as 1.5 images here (rounded up per video): 6 s = 9 images"
            in await page.locator("#flash").inner_text()
        )
        assert await page.locator("#now-video-rate").inner_text() == "1.5"
        await page.fill("#video-rate", "11")
        await page.locator("#video-rate").evaluate("e => e.removeAttribute('max')")
        await page.locator("#form-video-rate button").click()
        assert (
            "The rate must be from 0.1 to 10 images per second"
            in await page.locator("#flash.problem").inner_text()
        )
        # Videos off.
        await page.select_option("#videos", "off")
        await page.locator("#form-videos button").click()
        assert "Videos are off" in await page.locator("#flash").inner_text()
        assert await page.locator("#now-videos").inner_text() == "Off"
        # The server's gallery on, banned members' images left visible.
        await page.select_option("#gallery", "on")
        await page.locator("#gallery-hide-banned").uncheck()
        await page.locator("#form-gallery button").click()
        flash = await page.locator("#flash").inner_text()
        assert "The web gallery of this server is on" in flash and "stay visible" in flash
        assert await page.locator("#now-gallery").inner_text() == "On"

    async def as_moderator(page: Any) -> None:
        # A moderator posting the same forms with a valid token is refused on the server.
        await open_dashboard(page, web_world, web_world.helper_id, guild)
        csrf = await csrf_of(page)
        for change, form in (
            ("video-rate", {"rate": "3"}),
            ("videos", {"enabled": "on"}),
            ("gallery", {"enabled": "off"}),
        ):
            answer = await page.request.post(
                web_world.url(f"/dashboard/{guild}/change/{change}"), form={CSRF_FIELD: csrf, **form}
            )
            assert answer.status == 403
            assert "Only server admins (Manage Server) can change this" in await answer.text()

    play(web_world, browser, scenario)
    play(web_world, browser, as_moderator)

    async def check() -> None:
        policy = await store.settings.guild_policy(guild)
        assert policy.video_rate == 1.5 and not policy.videos_enabled
        switches = await store.gallery.switches(guild)
        assert switches.enabled and not switches.hide_banned
        entries = await store.settings.admin_log(guild, 3)
        assert [(e.action, e.actor_id, e.details) for e in reversed(entries)] == [
            ("policy", fake.moderator_id, {"video_rate": 1.5}),
            ("policy", fake.moderator_id, {"videos_enabled": False}),
            ("gallery", fake.moderator_id, {"gallery_enabled": 1, "gallery_hide_banned": 0}),
        ]
        now = time.time()
        await store.settings.update_policy(
            guild, fake.owner_id, now, video_rate=before.video_rate, videos_enabled=before.videos_enabled
        )
        await store.gallery.set_switches(
            guild, fake.owner_id, now, enabled=was.enabled, hide_banned=was.hide_banned
        )

    web_world.run(check())
