"""/usage: a member's own use of the image bot today and this month, and moderators' view of anyone's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import reports
from bot.quotas import Member
from cogs.common import GUILD_ONLY, say_privately
from cogs.requesting import member_of

if TYPE_CHECKING:
    from bot.app import ImagineBot

NOT_A_MODERATOR = (
    "Only moderators (Manage Server or Manage Messages) can look at another member's use. "
    "Run `/usage` without a member to see your own."
)


def is_owner(interaction: discord.Interaction[ImagineBot]) -> bool:
    guild = interaction.guild
    return guild is not None and guild.owner_id == interaction.user.id


def is_moderator(interaction: discord.Interaction[ImagineBot]) -> bool:
    """Checked on our side from the permissions Discord computed for this interaction."""
    permissions = interaction.permissions
    return permissions.manage_guild or permissions.manage_messages or is_owner(interaction)


def member_view(interaction: discord.Interaction[ImagineBot], user: discord.Member | discord.User) -> Member:
    """The quota policy's view of a member named in a command option (not the invoker)."""
    if user.id == interaction.user.id:
        return member_of(interaction)
    guild = interaction.guild
    roles: tuple[int, ...] = ()
    can_manage = False
    if isinstance(user, discord.Member):
        roles = tuple(role.id for role in user.roles)
        permissions = user.resolved_permissions or user.guild_permissions
        can_manage = permissions.manage_guild
    return Member(
        guild_id=interaction.guild_id or 0,
        user_id=user.id,
        role_ids=roles,
        is_owner=guild is not None and guild.owner_id == user.id,
        can_manage_guild=can_manage,
    )


async def reply(interaction: discord.Interaction[ImagineBot], text: str) -> None:
    """Every answer of these commands: private, and never pinging anyone."""
    await say_privately(interaction, reports.clip(text))


class Usage(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="usage", description="Your images today and this month, and what you have left"
    )
    @app_commands.guild_only()
    @app_commands.describe(member="Moderators only: look at another member's use")
    async def usage(
        self,
        interaction: discord.Interaction[ImagineBot],
        member: discord.Member | discord.User | None = None,
    ) -> None:
        if interaction.guild_id is None:
            await reply(interaction, GUILD_ONLY)
            return
        other = member is not None and member.id != interaction.user.id
        if other and not is_moderator(interaction):
            await reply(interaction, NOT_A_MODERATOR)
            return
        subject = member_view(interaction, member) if member is not None else member_of(interaction)
        summary = await self.bot.store.usage_summary(
            subject, self.bot.clock.time(), self.bot.settings.default_daily_quota
        )
        await reply(
            interaction, reports.usage_text(summary, subject=f"<@{subject.user_id}>" if other else None)
        )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Usage(bot))
