"""/imagine: check the input, admit the request (of `count` images) under the guild's rules,
acknowledge at once, and hand it to the job runner."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.image_contract import MAX_PROMPT_CHARS
from bot.core.policy.quotas import MAX_COUNT
from bot.core.policy.validation import AttachmentInfo
from bot.discord.choices import ASPECT_CHOICES
from bot.discord.requests import Draft
from bot.discord.style_autocomplete import style_choices
from bot.discord.variations_preview import PREVIEW_ITEMS, start_or_preview

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

log = logging.getLogger(__name__)


def _attachment_info(attachment: discord.Attachment) -> AttachmentInfo:
    # The URL is passed on exactly as Discord gives it: its signed query string is what lets the
    # image service download it.
    return AttachmentInfo(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        url=attachment.url,
    )


class Imagine(commands.Cog):
    def __init__(self, bot: ImagineBotBase) -> None:
        self.bot = bot

    @app_commands.command(
        name="imagine", description="Make an image from a prompt (and optional reference images)"
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(
        # Prompt variations: the braces are explained where members type them (Discord allows 100 chars).
        prompt="What the image should show; {red, blue} makes one per choice, \\{red\\} keeps the braces",
        aspect_ratio="Shape of the image (ignored when reference images decide the size)",
        image1="A reference image to edit or draw from",
        image2="Another reference image",
        image3="Another reference image",
        image4="Another reference image",
        image5="Another reference image",
        style="One of this server's styles, added to your prompt",
        count="How many images (1-4; default: your /settings, else 1)",
    )
    @app_commands.choices(aspect_ratio=ASPECT_CHOICES)
    @app_commands.autocomplete(style=style_choices)
    async def imagine(
        self,
        interaction: discord.Interaction[ImagineBotBase],
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        aspect_ratio: app_commands.Choice[str] | None = None,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        style: app_commands.Range[str, 1, 100] | None = None,
        count: app_commands.Range[int, 1, MAX_COUNT] | None = None,
    ) -> None:
        attachments = [a for a in (image1, image2, image3, image4, image5) if a is not None]
        ratio = aspect_ratio.value if aspect_ratio else None
        # The member's /settings fill in what they left out, and a style they name must exist: both
        # read the database, so they are part of the admission (see start_request).
        draft = Draft(prompt, ratio, tuple(_attachment_info(a) for a in attachments), style, count=count)
        # Prompt variations (`a {red, blue} car`) get a private preview first (variations_preview.py).
        await start_or_preview(interaction, draft)


async def setup(bot: ImagineBotBase) -> None:
    bot.add_dynamic_items(*PREVIEW_ITEMS)  # prompt variations: the preview's Confirm and Cancel
    await bot.add_cog(Imagine(bot))
