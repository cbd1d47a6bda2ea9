"""Who may do what, decided in one place for every command and button.

Two levels, both from the permissions Discord computed for this very interaction (right even without
the members intent, and after any channel overwrites), and both counting the server owner:

- a **moderator** (`is_moderator`): the owner, Manage Server or Manage Messages. Acts on other members'
  jobs and views: Cancel and Delete on anyone's job, `/queue all`, `/history member`, `/usage member`,
  paging through another member's history.
- a **server admin** (`is_server_admin`): the owner or Manage Server. Runs `/imagine-admin`.

And what the bot itself lacks in a channel (`missing_permissions`), for `/imagine-admin settings` and
`python -m bot check`.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.core.i18n import N_

NOT_YOURS = N_("This is not your request: only the member who asked, or a moderator, can do that.")
NOT_A_MODERATOR = N_("Only moderators (Manage Messages or Manage Server) can do that.")
NEEDS_MANAGE_SERVER = N_("You need the Manage Server permission to use `/imagine-admin`.")


def is_owner(interaction: discord.Interaction[Any]) -> bool:
    """The server owner. Discord already grants them every permission; checked by id too so that the
    owner keeps their powers even where a guild's permissions were not sent."""
    guild = interaction.guild
    return guild is not None and guild.owner_id == interaction.user.id


def is_moderator(interaction: discord.Interaction[Any]) -> bool:
    """May act on other members' jobs: the owner, Manage Server or Manage Messages, in a server that
    installed the bot (a moderator of a server the bot is not in moderates nothing of the bot's)."""
    if interaction.guild_id is None or not interaction.is_guild_integration():
        return False
    permissions = interaction.permissions
    return permissions.manage_messages or permissions.manage_guild or is_owner(interaction)


def is_server_admin(interaction: discord.Interaction[Any]) -> bool:
    """May change the bot's settings in this server (`/imagine-admin`): the owner or Manage Server."""
    if interaction.guild_id is None or not interaction.is_guild_integration():
        return False
    return interaction.permissions.manage_guild or is_owner(interaction)


def may_act_on(interaction: discord.Interaction[Any], owner_id: int | None) -> bool:
    """Whether the clicker may act on something of `owner_id`'s: their own, or as a moderator."""
    return interaction.user.id == owner_id or is_moderator(interaction)


# What the bot needs where members use it, and in the mod-log channel.
CHANNEL_NEEDS = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "read_message_history": "Read Message History",
}
MODLOG_NEEDS = {"view_channel": "View Channel", "send_messages": "Send Messages"}


def missing_permissions(permissions: discord.Permissions, needs: dict[str, str] = CHANNEL_NEEDS) -> list[str]:
    return [label for name, label in needs.items() if not getattr(permissions, name)]
