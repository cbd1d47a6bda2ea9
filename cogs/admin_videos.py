"""/imagine-admin cost video and /imagine-admin videos: what a video counts as in this server, and whether
members may make videos at all.

Settings writes, like the limits: they go straight to the store with their admin_log row."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from discord import app_commands

from bot.core import change_sentences as say
from bot.core.change_sentences import IN_DISCORD
from bot.core.i18n import t
from bot.discord.admin import AdminCog, Interaction
from bot.discord.replies import private_locale, reply

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

# Images per second of video a server may set: from a tenth (a 15 s clip costs 2) to 10 (it costs 150).
MIN_RATE = 0.1
MAX_RATE = 10.0


class AdminVideos(AdminCog):
    cost = app_commands.Group(name="cost", description="What requests count as against quotas")

    @cost.command(name="video", description="How many images one second of video counts as")
    @app_commands.describe(images_per_second="Images per second of video, 0.1 to 10 (default 0.5)")
    async def cost_video(
        self, interaction: Interaction, images_per_second: app_commands.Range[float, MIN_RATE, MAX_RATE]
    ) -> None:
        locale = private_locale(interaction)
        if not math.isfinite(images_per_second) or not MIN_RATE <= images_per_second <= MAX_RATE:
            await reply(
                interaction,
                t(
                    locale,
                    "The rate must be from {low} to {high} images per second. Nothing was changed.",
                    low=f"{MIN_RATE:g}",
                    high=f"{MAX_RATE:g}",
                ),
            )
            return
        rate = round(images_per_second, 3)
        await self.bot.store.settings.update_policy(
            self.gid(interaction), interaction.user.id, self.now(), video_rate=rate
        )
        change = say.video_rate(rate)
        await reply(interaction, change(IN_DISCORD, locale))
        await self.log_change(interaction, change)

    @app_commands.command(name="videos", description="Whether members may make videos (/animate, Animate)")
    @app_commands.describe(state="on (default) or off")
    @app_commands.choices(
        state=[app_commands.Choice(name="on", value="on"), app_commands.Choice(name="off", value="off")]
    )
    async def videos(self, interaction: Interaction, state: app_commands.Choice[str]) -> None:
        enabled = state.value == "on"
        await self.bot.store.settings.update_policy(
            self.gid(interaction), interaction.user.id, self.now(), videos_enabled=enabled
        )
        change = say.videos(enabled)
        await reply(interaction, change(IN_DISCORD, private_locale(interaction)))
        await self.log_change(interaction, change)


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(AdminVideos(bot))
