"""/animate, the "Animate" message menu and the Animate button under the bot's images: a short video
from a prompt or from one image (bot/discord/animate.py does the work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.policy.validation import AttachmentInfo, InputRefused
from bot.core.policy.video_request import validate_video_request
from bot.core.video_contract import (
    MAX_MOTION_PROMPT_CHARS,
    VIDEO_DURATIONS,
    VIDEO_RESOLUTIONS,
)
from bot.discord.animate_dialog import (
    AnimateButton,
    allowed_rate,
    open_menu_dialog,
    refuse_video_input,
    start_video,
)
from bot.discord.choices import ASPECT_CHOICES

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

MENU_NAME = "Animate"
DURATION_CHOICES = [app_commands.Choice(name=f"{d} s", value=d) for d in VIDEO_DURATIONS]
RESOLUTION_CHOICES = [app_commands.Choice(name=r, value=r) for r in VIDEO_RESOLUTIONS]


class Animate(commands.Cog):
    def __init__(self, bot: ImagineBotBase) -> None:
        self.bot = bot
        # discord.py has no context-menu decorator for cog methods: the menu is added to the tree here.
        self.menu = app_commands.ContextMenu(
            name=MENU_NAME,
            callback=self.animate_message,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)
        # The button under every image the bot posts: found again from its custom_id after a restart.
        self.bot.add_dynamic_items(AnimateButton)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        self.bot.remove_dynamic_items(AnimateButton)

    @app_commands.command(
        name="animate", description="Make a short video from a prompt (and optionally an image)"
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(
        prompt="What should happen in the video (how the picture moves)",
        image="An image to animate: the video takes its size",
        duration="Length of the video in seconds (longer counts as more images)",
        resolution="480P or 720P (only without an image)",
        aspect_ratio="Shape of the video (only without an image)",
    )
    @app_commands.choices(duration=DURATION_CHOICES)
    @app_commands.choices(resolution=RESOLUTION_CHOICES, aspect_ratio=ASPECT_CHOICES)
    async def animate(
        self,
        interaction: discord.Interaction[ImagineBotBase],
        prompt: app_commands.Range[str, 1, MAX_MOTION_PROMPT_CHARS],
        image: discord.Attachment | None = None,
        duration: app_commands.Choice[int] | None = None,
        resolution: app_commands.Choice[str] | None = None,
        aspect_ratio: app_commands.Choice[str] | None = None,
    ) -> None:
        attachments = (
            (AttachmentInfo(image.filename, image.content_type, image.size, image.url),) if image else ()
        )
        try:
            request = validate_video_request(
                prompt,
                duration=duration.value if duration else None,
                resolution=resolution.value if resolution else None,
                aspect_ratio=aspect_ratio.value if aspect_ratio else None,
                attachments=attachments,
                max_attachment_bytes=self.bot.settings.max_attachment_bytes,
            )
        except InputRefused as refusal:
            await refuse_video_input(interaction, refusal.text, prompt, len(attachments))
            return
        rate = await allowed_rate(interaction)
        if rate is None:
            return
        await start_video(interaction, request, rate)

    async def animate_message(
        self, interaction: discord.Interaction[ImagineBotBase], message: discord.Message
    ) -> None:
        await open_menu_dialog(interaction, message)


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(Animate(bot))
