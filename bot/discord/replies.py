"""How the bot answers on Discord: no pings, private replies, and the texts several commands share."""

from __future__ import annotations

from typing import Any

import discord

from bot import messages, reports

# Every message the bot sends uses this: prompt text can never ping anyone.
NO_PINGS = discord.AllowedMentions.none()

GUILD_ONLY = "This command works in a server channel, not in DMs: quotas and images belong to a server."


async def say_privately(interaction: discord.Interaction[Any], text: str) -> None:
    """A private answer that pings nobody, whether or not the interaction was answered already."""
    text = messages.clip(text)  # a reply over Discord's limit would be refused whole
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


async def reply(interaction: discord.Interaction[Any], text: str) -> None:
    """A private answer cut at a line boundary (for reports and lists): what /usage and
    /imagine-admin answer with."""
    await say_privately(interaction, reports.clip(text))
