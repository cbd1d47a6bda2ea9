"""The quota policy's view of a member (`bot.quotas.Member`), built from an interaction."""

from __future__ import annotations

from typing import Any

import discord

from bot.core.policy.quotas import Member


def member_of(interaction: discord.Interaction[Any]) -> Member:
    """The requester. Permissions come from Discord's own computation in the interaction payload, so
    they are right even without the members intent."""
    user = interaction.user
    guild = interaction.guild
    roles = tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()
    return Member(
        guild_id=interaction.guild_id or 0,
        user_id=user.id,
        role_ids=roles,
        is_owner=guild is not None and guild.owner_id == user.id,
        can_manage_guild=interaction.permissions.manage_guild,
    )


def member_view(interaction: discord.Interaction[Any], user: discord.Member | discord.User) -> Member:
    """A member named in a command option (not the invoker)."""
    if user.id == interaction.user.id:
        return member_of(interaction)
    guild = interaction.guild
    roles: tuple[int, ...] = ()
    can_manage = False
    if isinstance(user, discord.Member):
        roles = tuple(role.id for role in user.roles)
        permissions = user.resolved_permissions or user.guild_permissions
        can_manage = permissions.manage_guild
    return Member(
        guild_id=interaction.guild_id or 0,
        user_id=user.id,
        role_ids=roles,
        is_owner=guild is not None and guild.owner_id == user.id,
        can_manage_guild=can_manage,
    )
