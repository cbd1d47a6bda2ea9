"""Where an interaction happens: a server that installed the bot, or personal use (the app installed to
the person's account, used in a DM with the bot, a group DM or a server the bot is not in)."""

from __future__ import annotations

from typing import Any

import discord

from bot.core.models import DM, GUILD, PERSONAL_CONTEXTS, PRIVATE_CHANNEL, USER_INSTALL_GUILD


def context_of(interaction: discord.Interaction[Any]) -> str:
    """Only a server whose own installation authorised the interaction is GUILD: there the bot is a
    member and the server's rules apply. Anything else is personal use under the personal quota."""
    if interaction.guild_id is not None:
        return GUILD if interaction.is_guild_integration() else USER_INSTALL_GUILD
    if interaction.context.private_channel:
        return PRIVATE_CHANNEL
    return DM


def is_personal(interaction: discord.Interaction[Any]) -> bool:
    return context_of(interaction) in PERSONAL_CONTEXTS


def server_of(interaction: discord.Interaction[Any]) -> int | None:
    """The server whose jobs, quotas and settings apply; None for personal use (it has no server)."""
    return None if is_personal(interaction) else interaction.guild_id
