"""/usage: a member's own use of the image bot today and this month, and moderators' view of anyone's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import reports
from bot.core.i18n import N_
from bot.core.policy.quotas import DEFAULT_MAX_RUNNING
from bot.discord.checks import is_moderator
from bot.discord.members import member_of, member_view
from bot.discord.places import is_personal
from bot.discord.replies import private_locale, reply

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

NOT_A_MODERATOR = N_(
    "Only moderators (Manage Server or Manage Messages) can look at another member's use. "
    "Run `/usage` without a member to see your own."
)


class Usage(commands.Cog):
    def __init__(self, bot: ImagineBotBase) -> None:
        self.bot = bot

    @app_commands.command(
        name="usage", description="Your images today and this month, and what you have left"
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(member="Moderators only: look at another member's use")
    async def usage(
        self,
        interaction: discord.Interaction[ImagineBotBase],
        member: discord.Member | discord.User | None = None,
    ) -> None:
        if is_personal(interaction):
            await self._personal(interaction, member)
            return
        other = member is not None and member.id != interaction.user.id
        if other and not is_moderator(interaction):
            await reply(interaction, NOT_A_MODERATOR)
            return
        subject = member_view(interaction, member) if member is not None else member_of(interaction)
        summary = await self.bot.store.usage.summary(
            subject, self.bot.clock.time(), self.bot.settings.default_daily_quota
        )
        await reply(
            interaction,
            reports.usage_text(
                summary,
                subject=f"<@{subject.user_id}>" if other else None,
                locale=private_locale(interaction),
            ),
        )

    async def _personal(
        self, interaction: discord.Interaction[ImagineBotBase], member: discord.Member | discord.User | None
    ) -> None:
        """Personal use (a DM, a group DM, a server without the bot): one's own, across all of them."""
        if member is not None and member.id != interaction.user.id:
            await reply(interaction, NOT_A_MODERATOR)
            return
        summary = await self.bot.store.personal.summary(
            interaction.user.id,
            self.bot.clock.time(),
            self.bot.settings.default_personal_quota,
            DEFAULT_MAX_RUNNING,
        )
        await reply(
            interaction, reports.usage_text(summary, personal=True, locale=private_locale(interaction))
        )


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(Usage(bot))
