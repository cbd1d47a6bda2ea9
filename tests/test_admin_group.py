"""`/imagine-admin` is one command group built from three cogs (limits, moderation, reports): Discord
sees one group with every subcommand, and each topic can be unloaded and loaded on its own."""

from __future__ import annotations

from discord import app_commands

from tests.bot_harness import World

LIMITS = {"quota", "cooldown", "concurrency", "timezone", "count-limit"}
MODERATION = {"ban", "unban", "bans", "blocklist", "modlog"}
REPORTS = {"settings", "stats", "export"}
STYLES = {"style", "private-images"}
VIDEOS = {"cost", "videos"}
GALLERY = {"gallery"}  # cogs/admin_gallery.py


async def test_one_group_from_three_cogs(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        [synced] = [c for c in fake.commands[fake.guild_id] if c["name"] == "imagine-admin"]
        everything = LIMITS | MODERATION | REPORTS | STYLES | VIDEOS | GALLERY
        assert {o["name"] for o in synced["options"]} == everything
        assert int(synced["default_member_permissions"]) == 1 << 5  # Manage Server
        quota = next(o for o in synced["options"] if o["name"] == "quota")
        assert {o["name"] for o in quota["options"]} == {
            "default", "role", "user", "grant", "reset", "guildcap", "exempt", "refund-cancelled"
        }  # fmt: skip

        await bot.unload_extension("cogs.admin_reports")
        group = bot.tree.get_command("imagine-admin")
        assert isinstance(group, app_commands.Group)
        assert {c.name for c in group.commands} == LIMITS | MODERATION | STYLES | VIDEOS | GALLERY

        await bot.load_extension("cogs.admin_reports")
        assert {c.name for c in group.commands} == LIMITS | MODERATION | REPORTS | STYLES | VIDEOS | GALLERY
        # A reloaded topic still answers, through the same admin check.
        interaction = await fake.invoke_slash(
            "imagine-admin", {}, subcommand="settings", user_id=fake.moderator_id
        )
        assert "Image bot settings" in (await fake.wait_for_callback(interaction)).json["data"]["content"]
