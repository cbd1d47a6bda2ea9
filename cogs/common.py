"""Small Discord constants shared by the cogs and the sink."""

from __future__ import annotations

from typing import Any

import discord

from bot import messages

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


def is_moderator(permissions: discord.Permissions) -> bool:
    """Who may act on other members' jobs: Manage Messages or Manage Server."""
    return permissions.manage_messages or permissions.manage_guild
