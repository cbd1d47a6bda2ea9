"""The server's styles on Discord: the autocomplete that offers them, and the lookup /imagine makes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase


async def style_choices(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """The server's styles whose name contains what the member typed (all of them, at most 25)."""
    bot: ImagineBotBase = interaction.client
    if interaction.guild_id is None:
        return []
    typed = current.strip().lower()
    found = await bot.store.styles.all(interaction.guild_id)
    # Names that start with the typed text first, then those that only contain it.
    matching = sorted(
        (s for s in found if typed in s.name.lower()),
        key=lambda s: (not s.name.lower().startswith(typed), s.name.lower()),
    )
    return [app_commands.Choice(name=s.name, value=s.name) for s in matching[:25]]
