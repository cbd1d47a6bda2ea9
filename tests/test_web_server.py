"""The web gallery's server without a browser: it runs inside the bot (WEB_PORT) and finds what the bot
posts, its settings are checked at start-up, `python -m bot web` runs alone only on PostgreSQL, cookies
are Secure behind https, and sign-in and search are rate-limited."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.core.models import JobStatus
from bot.ops import cli
from bot.ops.config import ConfigError, Secret, load_settings
from tests.bot_harness import World, wait_for_job
from tests.test_admin_commands import admin
from tests.web_harness import SESSION_SECRET, WebWorld, free_port

WEB_ENV = {
    "WEB_PORT": "8088",
    "WEB_SESSION_SECRET": SESSION_SECRET,
    "DISCORD_CLIENT_ID": "123456789012345678",
    "DISCORD_CLIENT_SECRET": "client-secret-value",
}


def client() -> aiohttp.ClientSession:
    # unsafe: keep cookies for 127.0.0.1 (an address, not a domain name).
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=10)
    )


async def test_the_bot_serves_the_gallery_and_finds_what_it_posted(world: World) -> None:
    fake = world.fake
    port = free_port()
    web = {
        "web_port": port,
        "web_session_secret": Secret(SESSION_SECRET),
        "discord_client_id": fake.application_id,
        "discord_client_secret": Secret(fake.oauth.client_secret),
        "discord_authorize_url": fake.oauth.authorize_url,
        "discord_api_base": fake.api_base,
    }
    base = f"http://127.0.0.1:{port}"
    async with world.bot(**web) as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "灯塔和水彩的海 at dusk"})
        await fake.wait_for_callback(interaction)
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        # The thumbnail was made after the delivery, beside the database (THUMBNAIL_DIR's default).
        await bot.thumbnails.settle()
        assert bot.settings.thumbnail_path == world.db_path.parent / "thumbnails"
        with Image.open(bot.thumbnails.path(job.id, 0)) as thumbnail:
            assert thumbnail.format == "WEBP" and max(thumbnail.size) <= 512
        async with client() as browser:
            async with browser.get(base + "/login/discord") as signed_in:  # through the fake's OAuth2
                assert signed_in.url.path == "/me"
            for words in ("水彩", "灯塔", "dusk"):
                async with browser.get(base + "/me", params={"q": words}) as found:
                    assert f'data-image-id="{job.id}"' in await found.text()
            async with browser.get(base + "/me", params={"q": "海鸥"}) as missed:
                assert f'data-image-id="{job.id}"' not in await missed.text()
            async with browser.get(f"{base}/images/{job.id}/picture/0") as picture:
                assert picture.status == 200 and picture.content_type == "image/png"
                task_id = next(iter(world.sandbox.tasks))
                assert await picture.read() == world.sandbox.image_bytes(task_id)
    with pytest.raises(aiohttp.ClientConnectionError):  # stopped with the bot
        async with client() as browser, browser.get(base + "/login"):
            pass


def test_web_settings_are_checked_at_start_up() -> None:
    settings = load_settings(WEB_ENV, env_file=None, require_token=False, require_api_key=False)
    assert settings.web_port == 8088 and settings.web_host == "127.0.0.1"
    assert settings.web_url == "http://127.0.0.1:8088"
    assert SESSION_SECRET in settings.secrets() and "client-secret-value" in settings.secrets()
    assert "client-secret-value" not in repr(settings)
    public = load_settings(
        WEB_ENV | {"PUBLIC_URL": "https://img.example.org/"},
        env_file=None,
        require_token=False,
        require_api_key=False,
    )
    assert public.web_url == "https://img.example.org"
    for missing, variable in (
        ({"WEB_SESSION_SECRET": ""}, "WEB_SESSION_SECRET"),
        ({"WEB_SESSION_SECRET": "short"}, "WEB_SESSION_SECRET"),
        ({"DISCORD_CLIENT_ID": ""}, "DISCORD_CLIENT_ID"),
        ({"DISCORD_CLIENT_SECRET": ""}, "DISCORD_CLIENT_SECRET"),
        ({"PUBLIC_URL": "img.example.org"}, "PUBLIC_URL"),
    ):
        with pytest.raises(ConfigError) as error:
            load_settings(WEB_ENV | missing, env_file=None, require_token=False, require_api_key=False)
        assert error.value.variable == variable
    # Off by default: nothing else is needed.
    assert load_settings({}, env_file=None, require_token=False, require_api_key=False).web_port is None


def test_the_gallery_runs_alone_only_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in WEB_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert cli.main(["web"]) == 2
    assert "with SQLite the bot is the database's only writer" in capsys.readouterr().err
    monkeypatch.delenv("WEB_PORT")
    assert cli.main(["web"]) == 2
    assert "set WEB_PORT" in capsys.readouterr().err


def cookie_flags(set_cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}


async def test_cookies_are_secure_behind_https(web_world: WebWorld) -> None:
    server = web_world.run(web_world.start_server(public_url="https://gallery.example.org"))
    async with (
        client() as browser,
        browser.get(web_world.url("/login/discord", server), allow_redirects=False) as response,
    ):
        assert response.status == 303
        assert "redirect_uri=https://gallery.example.org/oauth/callback" in response.headers["Location"]
        flags = cookie_flags(response.headers["Set-Cookie"])
        assert {"secure", "httponly", "samesite"} <= flags
        assert "samesite=lax" in response.headers["Set-Cookie"].lower().replace(" ", "")


async def test_sign_in_and_search_are_rate_limited(web_world: WebWorld) -> None:
    strict = web_world.run(web_world.start_server(login_rate=(3, 60.0), search_rate=(2, 60.0)))

    async def status(browser: aiohttp.ClientSession, path: str, **params: Any) -> tuple[int, str]:
        async with browser.get(web_world.url(path, strict), params=params, allow_redirects=False) as response:
            return response.status, await response.text()

    async with client() as browser:
        async with browser.get(web_world.url("/login/discord", strict)) as signed_in:  # two of three
            assert signed_in.url.path == "/me"
        assert (await status(browser, "/me", q="cat"))[0] == 200
        assert (await status(browser, "/me", q="水彩"))[0] == 200
        code, page = await status(browser, "/me", q="fox")
        assert code == 429 and "Too many requests. Please wait a minute and try again." in page
        assert (await status(browser, "/me"))[0] == 200  # browsing without words goes on
        assert (await status(browser, "/login/discord"))[0] == 303  # the third sign-in step
        code, page = await status(browser, "/login/discord")
        assert code == 429 and "Too many requests" in page


async def test_python_m_bot_web_serves_alone_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The gallery as a process of its own: up on PostgreSQL, answering, and stopping cleanly on SIGTERM."""
    import os
    import signal
    import sys

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "DISCORD_", "DATABASE_"))}
    env |= WEB_ENV | {"WEB_PORT": str(port), "DATABASE_URL": pg_url, "LOG_LEVEL": "INFO"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "web", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    async with client() as browser, browser.get(f"http://127.0.0.1:{port}/login") as page:
                        assert page.status == 200 and "Sign in with Discord" in await page.text()
                        break
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, "python -m bot web exited"
                    await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await process.wait() == 0
        assert process.stderr is not None
        logged = (await process.stderr.read()).decode()
        assert "web gallery listening" in logged and SESSION_SECRET not in logged
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_server_admins_turn_the_gallery_on_and_off(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        refused = await fake.invoke_slash(
            "imagine-admin", {"state": "on"}, subcommand="gallery", user_id=fake.user_id
        )
        await fake.wait_for_callback(refused)
        assert not (await bot.store.gallery.switches(fake.guild_id)).enabled
        answer = await admin(fake, "gallery", {"state": "on"}, user_id=fake.owner_id)
        assert "is **on**" in answer.text and "are hidden" in answer.text
        switches = await bot.store.gallery.switches(fake.guild_id)
        assert switches.enabled and switches.hide_banned
        answer = await admin(fake, "gallery", {"state": "on", "hide_banned": False}, user_id=fake.owner_id)
        assert "stay visible" in answer.text
        assert not (await bot.store.gallery.switches(fake.guild_id)).hide_banned
        answer = await admin(fake, "gallery", {"state": "off"}, user_id=fake.owner_id)
        assert "is **off**" in answer.text
        assert not (await bot.store.gallery.switches(fake.guild_id)).enabled
        # Recorded like every admin command.
        entries = await bot.store.settings.admin_log(fake.guild_id)
        logged = [e.details for e in entries if e.action == "gallery"]
        assert logged == [
            {"gallery_enabled": 0},
            {"gallery_enabled": 1, "gallery_hide_banned": 0},
            {"gallery_enabled": 1},
        ]
        assert all(e.actor_id == fake.owner_id for e in entries if e.action == "gallery")


async def test_without_a_bot_token_a_stale_membership_means_signing_in_again(
    web_world: WebWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.web import membership

    tokenless = web_world.run(web_world.start_server(discord_token=None))
    guild = web_world.fake.guild_id
    web_world.run(web_world.gallery(True))
    web_world.fake.oauth.signed_in_as = None
    async with client() as browser:
        async with browser.get(web_world.url("/login/discord", tokenless)) as signed_in:
            assert signed_in.url.path == "/me"
        async with browser.get(web_world.url(f"/servers/{guild}", tokenless)) as page:
            assert page.status == 200  # what sign-in said, while it is fresh
        monkeypatch.setattr(membership, "MEMBERSHIP_TTL", 0.0)
        async with browser.get(web_world.url(f"/servers/{guild}", tokenless), allow_redirects=False) as page:
            assert page.status == 303 and page.headers["Location"] == "/login/discord"
        async with browser.get(web_world.url(f"/servers/{web_world.seeded.elsewhere_id}", tokenless)) as page:
            assert page.status == 404  # never listed: nothing to ask Discord with, so no
