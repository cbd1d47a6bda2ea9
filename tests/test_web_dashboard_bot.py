"""The dashboard inside the real bot's process (WEB_PORT on the bot, SQLite): a server admin signs in
through the fake Discord, lowers the daily limit in the dashboard, and `/usage`, answered by the real
bot client on the fake Discord, follows at once; the change is in admin_log and the mod-log channel.

The bot runs on the web world's loop (tests/web_harness.py), where the shared browser lives; it has a
fake Discord and a sandbox of its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.core.policy.quotas import Member
from bot.ops.config import Secret
from sandbox.server import Sandbox, SandboxConfig
from testing.fake_discord import FakeDiscord, running_fake
from tests.bot_harness import EPHEMERAL, World
from tests.test_web_gallery import new_page
from tests.web_harness import SESSION_SECRET, WebWorld, free_port

DEADLINE = 60.0


async def usage_text(fake: FakeDiscord, user_id: int) -> str:
    interaction = await fake.invoke_slash("usage", {}, user_id=user_id)
    callback = (await fake.wait_for_callback(interaction)).json
    assert callback["type"] == 4 and callback["data"]["flags"] & EPHEMERAL
    return str(callback["data"]["content"])


def test_a_limit_changed_in_the_dashboard_is_what_usage_shows(
    browser: Any, web_world: WebWorld, tmp_path: Path
) -> None:
    async def scenario() -> None:
        sandbox = Sandbox(SandboxConfig(duration=0.3, seed=7))
        await sandbox.start()
        try:
            async with running_fake() as fake:
                modlog = fake.add_channel(fake.guild_id, "mod-log")
                world = World(fake, sandbox, tmp_path / "bot.db")
                port = free_port()
                web = {
                    "web_port": port,
                    "web_session_secret": Secret(SESSION_SECRET),
                    "discord_api_base": fake.api_base,
                    "discord_client_id": fake.application_id,
                    "discord_client_secret": Secret(fake.oauth.client_secret),
                    "discord_authorize_url": fake.oauth.authorize_url,
                }
                async with world.bot(**web) as bot:
                    await bot.store.settings.update_policy(
                        fake.guild_id, fake.owner_id, bot.clock.time(), modlog_channel_id=modlog
                    )
                    before = await usage_text(fake, fake.user_id)
                    assert "of 10 (10 left)" in before
                    async with new_page(browser) as page:
                        await change_the_limit(page, fake, f"http://127.0.0.1:{port}")
                    after = await usage_text(fake, fake.user_id)
                    assert "of 3 (3 left)" in after
                    summary = await bot.store.usage.summary(
                        Member(fake.guild_id, fake.user_id), bot.clock.time(), 10
                    )
                    assert summary.limit == 3
                    entry = (await bot.store.settings.admin_log(fake.guild_id, 1))[0]
                    assert (entry.actor_id, entry.action, entry.details) == (
                        fake.moderator_id,
                        "policy",
                        {"default_quota": 3},
                    )
                    posted = [m for m in fake.messages.values() if m["channel_id"] == str(modlog)]
                    assert [m["content"] for m in posted] == [
                        f"🛠️ <@{fake.moderator_id}> on the web dashboard: The server's daily limit is now "
                        "3 a day (was the bot default, 10 a day)."
                    ]
        finally:
            await sandbox.stop()

    web_world.run(scenario(), timeout=DEADLINE)


async def change_the_limit(page: Any, fake: FakeDiscord, base: str) -> None:
    fake.oauth.signed_in_as = fake.moderator_id
    await page.goto(base + "/login")
    await page.get_by_role("link", name="Sign in with Discord").click()
    await page.wait_for_url(re.compile(r"/me$"))
    await page.get_by_role("link", name="Dashboard").click()
    await page.get_by_role("link", name="Imagine Test Guild").click()
    await page.fill("#server-limit", "3")
    await page.locator("#form-server-limit button").click()
    await page.wait_for_url(re.compile(rf"/dashboard/{fake.guild_id}$"))
    assert "now 3 a day" in await page.locator("#flash").inner_text()
