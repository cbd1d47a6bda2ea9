"""/settings: a member's own defaults in this server (aspect ratio, style, where finished images go,
images per request).
Called without options it shows them; the answer is always private."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import messages
from bot.core.i18n import t
from bot.core.policy.quotas import MAX_COUNT
from bot.core.policy.styles import DELIVERY_CHANNEL, DELIVERY_DM, DELIVERY_EPHEMERAL, PRIVATE_DELIVERIES
from bot.discord.choices import ASPECT_CHOICES
from bot.discord.members import member_of
from bot.discord.replies import GUILD_ONLY, private_locale, say_privately
from bot.discord.style_autocomplete import style_choices

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

log = logging.getLogger(__name__)

DELIVERY_CHOICES = [
    app_commands.Choice(name="Post in the channel", value=DELIVERY_CHANNEL),
    app_commands.Choice(name="Privately (a message only I see)", value=DELIVERY_EPHEMERAL),
    app_commands.Choice(name="By direct message", value=DELIVERY_DM),
]
CLEAR_CHOICES = [
    app_commands.Choice(name="aspect ratio", value="aspect_ratio"),
    app_commands.Choice(name="style", value="style"),
    app_commands.Choice(name="where images go", value="delivery"),
    app_commands.Choice(name="images per request", value="image_count"),
    app_commands.Choice(name="all of them", value="all"),
]


class Settings(commands.Cog):
    def __init__(self, bot: ImagineBotBase) -> None:
        self.bot = bot

    @app_commands.command(name="settings", description="Your own defaults for /imagine in this server")
    @app_commands.guild_only()
    @app_commands.describe(
        aspect_ratio="Used when /imagine leaves the aspect ratio out",
        style="One of this server's styles, used when /imagine leaves the style out",
        delivery="Where your finished images go (private only where the server allows it)",
        count="How many images /imagine makes when it leaves count out (within the server's limit)",
        clear="Reset one of your settings, or all of them",
    )
    @app_commands.choices(aspect_ratio=ASPECT_CHOICES, delivery=DELIVERY_CHOICES, clear=CLEAR_CHOICES)
    @app_commands.autocomplete(style=style_choices)
    async def settings(
        self,
        interaction: discord.Interaction[ImagineBotBase],
        aspect_ratio: app_commands.Choice[str] | None = None,
        style: app_commands.Range[str, 1, 100] | None = None,
        delivery: app_commands.Choice[str] | None = None,
        clear: app_commands.Choice[str] | None = None,
        count: app_commands.Range[int, 1, MAX_COUNT] | None = None,
    ) -> None:
        guild_id = interaction.guild_id
        if guild_id is None:
            await say_privately(interaction, GUILD_ONLY)
            return
        store, user_id = self.bot.store, interaction.user.id
        changes: dict[str, str | int | None] = {}
        if clear is not None:
            every = ("aspect_ratio", "style", "delivery", "image_count")
            names = every if clear.value == "all" else (clear.value,)
            changes |= dict.fromkeys(names)
        if aspect_ratio is not None:
            changes["aspect_ratio"] = aspect_ratio.value
        if delivery is not None:
            changes["delivery"] = delivery.value
        if count is not None:
            changes["image_count"] = count
        if style is not None:
            found = await store.styles.get(guild_id, style)
            if found is None:
                await say_privately(interaction, messages.style_unknown(style))
                return
            changes["style"] = found.name
        if changes:
            # The member's own settings: the one write a member command makes (see tests/test_layout.py).
            saved = await store.styles.save_member_settings(
                guild_id, user_id, self.bot.clock.time(), **changes
            )
        else:
            saved = await store.styles.member_settings(guild_id, user_id)
        policy = await store.settings.guild_policy(guild_id)
        exists = saved.style is None or await store.styles.get(guild_id, saved.style) is not None
        locale = private_locale(interaction)
        lines = messages.settings_text(
            saved.aspect_ratio,
            saved.style,
            saved.delivery,
            style_exists=exists,
            private_allowed=policy.private_images,
            locale=locale,
        ).split("\n")
        # The count goes with the other settings, above the closing "change one with..." line.
        roles = member_of(interaction).role_ids
        limit = (await store.styles.request_defaults(guild_id, user_id, None, roles)).count_limit
        lines.insert(len(lines) - 1, count_line(saved.image_count, limit, locale))
        if delivery is not None and delivery.value in PRIVATE_DELIVERIES and not policy.private_images:
            lines.append(t(locale, messages.PRIVATE_NOT_ALLOWED))
        await say_privately(interaction, "\n".join(lines))


def count_line(count: int | None, limit: int, locale: str | None) -> str:
    """How many images /imagine makes when it leaves `count` out, as /settings shows it."""
    if count is None:
        return t(
            locale, "• Images per request: 1 (the default; this server allows you up to {limit})", limit=limit
        )
    if count > limit:
        return t(
            locale,
            "• Images per request: {count}, but this server allows you at most {limit}, so you get {limit}",
            count=count,
            limit=limit,
        )
    return t(locale, "• Images per request: {count}", count=count)


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(Settings(bot))
