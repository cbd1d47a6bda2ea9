"""/imagine-admin gallery: turn the server's web gallery on or off (docs/web.md), and choose whether the
images of members banned from the bot disappear from it.

A settings write, like the limits: it goes straight to the store with its admin_log row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands

from bot.core.i18n import t
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
        locale = private_locale(interaction)
        if not switches.enabled:
            await reply(interaction, t(locale, "The web gallery of this server is **off**."))
            return
        text = t(
            locale,
            "The web gallery of this server is **on**: its members see the images posted here (never "
            "private ones) after signing in with Discord.",
        )
        if switches.hide_banned:
            text += " " + t(locale, "Images of members banned from the image bot are hidden.")
        else:
            text += " " + t(locale, "Images of members banned from the image bot stay visible.")
        url = self.bot.settings.web_url if self.bot.settings.web_port is not None else None
        if url is not None:
            text += "\n" + url
        await reply(interaction, text)


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(AdminGallery(bot))
