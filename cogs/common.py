"""Small Discord constants shared by the cogs and the sink."""

from __future__ import annotations

import discord

# Every message the bot sends uses this: prompt text can never ping anyone.
NO_PINGS = discord.AllowedMentions.none()

GUILD_ONLY = "This command works in a server channel, not in DMs: quotas and images belong to a server."


def is_moderator(permissions: discord.Permissions) -> bool:
    """Who may act on other members' jobs: Manage Messages or Manage Server."""
    return permissions.manage_messages or permissions.manage_guild
