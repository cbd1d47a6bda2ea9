"""The one `/imagine-admin` command group, shared by the admin cogs (limits, moderation, reports).

Discord sees a single group; each topic is its own cog in `cogs/admin_*.py`. discord.py gives a
GroupCog a group of its own, so two cogs cannot both be `/imagine-admin`: instead each topic is a plain
cog deriving from `AdminCog`, whose commands (and subgroups such as `quota`) are moved into the shared
group when the cog loads and taken out when it unloads. Command names members see do not change.

Discord hides the group from members without Manage Server (`default_permissions`), but a server can
override that in its integration settings, so every invocation is checked again (`interaction_check`).

Admin commands are settings writes, not job events: they call the store directly (each write is one
transaction together with its admin_log row). Job events (cancel, delete, refusals, mod-log entries)
go through the JobRunner instead. A change that was made is also said in the server's mod-log channel
(`log_change`), with the sentence the web dashboard posts for the same change
(bot/core/change_sentences.py), so moderators see every change however it was made.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import reports
from bot.core.change_sentences import IN_DISCORD, Describe, default_limit_text, modlog_entry
from bot.core.texts import msg
from bot.discord.checks import NEEDS_MANAGE_SERVER, is_server_admin
from bot.discord.members import member_view
from bot.discord.replies import public_locale, reply

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

log = logging.getLogger(__name__)

GROUP_NAME = "imagine-admin"
GROUP_DESCRIPTION = "Moderate the image bot in this server"

Interaction = discord.Interaction["ImagineBotBase"]
Target = discord.Member | discord.User


def admin_group(tree: app_commands.CommandTree[Any]) -> app_commands.Group:
    """The tree's `/imagine-admin` group, created (guild-only, Manage Server by default) on first use."""
    existing = tree.get_command(GROUP_NAME)
    if isinstance(existing, app_commands.Group):
        return existing
    group = app_commands.Group(
        name=GROUP_NAME,
        description=GROUP_DESCRIPTION,
        guild_only=True,
        # Server settings need a server that installed the bot: never part of a personal install.
        allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
        allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
        default_permissions=discord.Permissions(manage_guild=True),
    )
    tree.add_command(group)
    return group


class AdminCog(commands.Cog):
    """A topic of `/imagine-admin`. Its app commands join the shared group instead of the tree."""

    def __init__(self, bot: ImagineBotBase) -> None:
        self.bot = bot
        # Cog.__new__ made copies of the class's commands bound to this instance; keep them for
        # cog_load and leave none for discord.py to add to the tree as top-level commands.
        self._admin_commands: list[app_commands.Command[Any, ..., Any] | app_commands.Group] = list(
            self.__cog_app_commands__
        )
        self.__cog_app_commands__ = []

    async def cog_load(self) -> None:
        group = admin_group(self.bot.tree)
        for command in self._admin_commands:
            group.add_command(command)

    async def cog_unload(self) -> None:
        group = self.bot.tree.get_command(GROUP_NAME)
        if not isinstance(group, app_commands.Group):
            return
        for command in self._admin_commands:
            group.remove_command(command.name)
        if not group.commands:  # Discord refuses a group without subcommands
            self.bot.tree.remove_command(GROUP_NAME)

    async def interaction_check(self, interaction: Interaction, /) -> bool:  # type: ignore[override]
        """Runs before every subcommand, whatever Discord's permission settings let through."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage
        if is_server_admin(interaction):
            return True
        log.info(
            "refused /imagine-admin %s to user %s in guild %s (no Manage Server)",
            interaction.command.qualified_name if interaction.command else "?",
            interaction.user.id,
            interaction.guild_id,
        )
        raise app_commands.CheckFailure(NEEDS_MANAGE_SERVER)

    # -- helpers shared by the topics ---------------------------------------------------------------

    def now(self) -> float:
        return self.bot.clock.time()

    @staticmethod
    def gid(interaction: Interaction) -> int:
        assert interaction.guild_id is not None  # interaction_check refused DMs
        return interaction.guild_id

    async def log_change(
        self, interaction: Interaction, describe: Describe, *, channel_id: int | None = None
    ) -> None:
        """A settings change in the server's mod-log channel, if it has one: the actor mentioned, in
        the server's language, pinging no one. Never raises (the sink's poster); `channel_id` for the
        mod-log being turned off, said in the channel it leaves."""
        locale = public_locale(interaction)
        entry = modlog_entry(locale, interaction.user.id, describe(IN_DISCORD, locale), on_dashboard=False)
        await self.bot.sink.modlog(self.gid(interaction), entry, channel_id=channel_id)

    async def describe_limit(self, interaction: Interaction, member: Target) -> str:
        summary = await self.bot.store.usage.summary(
            member_view(interaction, member), self.now(), self.bot.settings.default_daily_quota
        )
        return reports.limit_text(summary.limit, interaction.locale.value)

    @staticmethod
    async def out_of_range(
        interaction: Interaction, name: str, value: int | None, low: int, high: int
    ) -> bool:
        """Discord enforces option ranges; this keeps a forged or stale request from slipping past."""
        if value is None or low <= value <= high:
            return False
        text = msg(
            "{name} must be from {low} to {high}. Nothing was changed.", name=f"`{name}`", low=low, high=high
        )
        await reply(interaction, text)
        return True

    def default_text(self, default: int | None, locale: str) -> str:
        return default_limit_text(default, self.bot.settings.default_daily_quota, locale)
