"""Every `/imagine-admin` settings change is said in the server's mod-log channel, as a dashboard change
is: once, naming the moderator who made it, pinging no one, in the server's language, with the very
sentence the dashboard posts (bot/core/change_sentences.py); and nothing is posted when the server has
no mod-log channel."""

from __future__ import annotations

from typing import Any

from bot.core import change_sentences as say
from bot.core.change_sentences import IN_DISCORD
from testing.fake_discord import FakeDiscord
from tests.bot_harness import World
from tests.test_admin_commands import admin

ENTRY = "🛠️ <@{actor}> with /imagine-admin: {change}"


def changes(fake: FakeDiscord, bot_default: int) -> list[tuple[str, dict[str, Any], str]]:
    """A limit, a ban, a rule, the video rate and the gallery switch, each with its expected sentence."""
    member = fake.user_id
    return [
        ("quota default", {"limit": 3}, say.server_limit(3, None, bot_default)(IN_DISCORD, "en-US")),
        (
            "ban",
            {"member": member, "reason": "spam", "duration": "2h"},
            say.ban(member, "spam", 7200)(IN_DISCORD, "en-US"),
        ),
        ("blocklist add", {"kind": "word", "pattern": "moon"}, "Added prompt rule #1 word `moon`."),
        ("cost video", {"images_per_second": 1.5}, say.video_rate(1.5)(IN_DISCORD, "en-US")),
        (
            "gallery",
            {"state": "on", "hide_banned": False},
            say.gallery(True, False)(IN_DISCORD, "en-US"),
        ),
    ]


def posts_in(fake: FakeDiscord, channel: int) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.method == "POST" and r.path == f"/channels/{channel}/messages"]


async def test_each_change_is_said_once_in_the_modlog_naming_who_made_it(world: World) -> None:
    fake = world.fake
    modlog = fake.add_channel(fake.guild_id, "mod-log")
    async with world.bot() as bot:
        await admin(fake, "modlog", {"channel": modlog})
        expected = changes(fake, bot.settings.default_daily_quota)
        for subcommand, options, sentence in expected:
            await admin(fake, subcommand, options)
            entry = ENTRY.format(actor=fake.moderator_id, change=sentence)
            await fake.wait_for_request(
                lambda r, entry=entry: r.path == f"/channels/{modlog}/messages" and r.json["content"] == entry
            )
        await world.settle(bot)
    posts = posts_in(fake, modlog)
    contents = [p["content"] for p in posts]
    assert contents == [
        ENTRY.format(actor=fake.moderator_id, change=f"The mod-log is now <#{modlog}>: refusals."),
        *(ENTRY.format(actor=fake.moderator_id, change=sentence) for _, _, sentence in expected),
    ]
    assert all(p["allowed_mentions"] == {"parse": []} for p in posts)
    assert "A second of video now counts as 1.5 images here" in contents[4]
    assert "for 2 h." in contents[2] and "Reason: `spam`" in contents[2]


async def test_nothing_is_posted_without_a_modlog_channel(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        for subcommand, options, _ in changes(fake, bot.settings.default_daily_quota):
            await admin(fake, subcommand, options)
        await world.settle(bot)
        assert len(await bot.store.settings.admin_log(fake.guild_id)) == 5  # the changes were made
    posted = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert posted == []


async def test_the_entry_is_in_the_servers_language(world: World) -> None:
    fake = world.fake
    fake.guilds[fake.guild_id].locale = "zh-CN"
    modlog = fake.add_channel(fake.guild_id, "mod-log")
    async with world.bot() as bot:
        await admin(fake, "modlog", {"channel": modlog})
        answer = await admin(fake, "cost video", {"images_per_second": 2.0})
        await world.settle(bot)
    contents = [p["content"] for p in posts_in(fake, modlog)]
    video = say.video_rate(2.0)(IN_DISCORD, "zh-CN")
    assert contents[-1] == f"🛠️ <@{fake.moderator_id}> 通过 /画图管理：{video}"
    assert "/imagine-admin" not in "".join(contents)
    # The moderator's own answer stays in their language.
    assert answer.text == say.video_rate(2.0)(IN_DISCORD, "en-US") != video
