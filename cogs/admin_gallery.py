"""/imagine-admin gallery: turn the server's web gallery on or off (docs/web.md), and choose whether the
images of members banned from the bot disappear from it.

A settings write, like the limits: it goes straight to the store with its admin_log row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands

from bot.core import change_sentences as say
from bot.core.change_sentences import IN_DISCORD
from bot.discord.admin import AdminCog, Interaction
from bot.discord.replies import private_locale, reply

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

STATES = [app_commands.Choice(name="on", value="on"), app_commands.Choice(name="off", value="off")]


class AdminGallery(AdminCog):
    @app_commands.command(name="gallery", description="Show this server's images on the web gallery")
    @app_commands.describe(
        state="on: members see the server's public images on the web gallery; off (default): they do not",
        hide_banned="Hide the images of members banned from the image bot (default: hidden)",
    )
    @app_commands.choices(state=STATES)
    async def gallery(
        self, interaction: Interaction, state: app_commands.Choice[str], hide_banned: bool | None = None
    ) -> None:
        switches = await self.bot.store.gallery.set_switches(
            self.gid(interaction),
            interaction.user.id,
            self.now(),
            enabled=state.value == "on",
            hide_banned=hide_banned,
        )
        change = say.gallery(switches.enabled, switches.hide_banned)
        text = change(IN_DISCORD, private_locale(interaction))
        url = self.bot.settings.web_url if self.bot.settings.web_port is not None else None
        if switches.enabled and url is not None:
            text += "\n" + url
        await reply(interaction, text)
        await self.log_change(interaction, change)


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(AdminGallery(bot))
