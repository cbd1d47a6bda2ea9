"""Starting a job from any interaction (/imagine, Reroll, Edit): admit under the guild's rules,
acknowledge at once, hand it to the runner. Refusals are private."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import discord

from bot import messages
from bot.models import ImageRequest, Origin
from bot.quotas import Member
from cogs.common import say_privately

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

# Interaction tokens live 15 minutes; the sink keeps a safety margin of its own.
TOKEN_LIFETIME = timedelta(minutes=15)


def member_of(interaction: discord.Interaction[ImagineBot]) -> Member:
    """The policy's view of the requester. Permissions come from Discord's own computation in the
    interaction payload, so they are right even without the members intent."""
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


def origin_of(interaction: discord.Interaction[ImagineBot]) -> Origin:
    return Origin(
        source="discord",
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        interaction_id=interaction.id,
        application_id=interaction.application_id,
        interaction_token=interaction.token,
        token_expires_at=interaction.created_at.timestamp() + TOKEN_LIFETIME.total_seconds(),
    )


async def refuse(
    interaction: discord.Interaction[ImagineBot],
    text: str,
    *,
    reason: str,
    prompt: str,
    detail: str | None = None,
) -> None:
    """A private refusal, plus a mod-log entry; nothing public appears."""
    await say_privately(interaction, text)
    entry = messages.modlog_refusal(interaction.user.id, interaction.channel_id, reason, prompt, detail)
    await interaction.client.sink.modlog(interaction.guild_id, entry, throttle=(interaction.user.id, reason))


async def start_request(interaction: discord.Interaction[ImagineBot], request: ImageRequest) -> None:
    bot = interaction.client
    decision, job = await bot.runner.admit(
        request, origin_of(interaction), member_of(interaction), bot.settings.default_daily_quota
    )
    if job is None:
        detail = decision.matched_rule.describe() if decision.matched_rule else None
        await refuse(
            interaction,
            decision.message,
            reason=decision.reason or "refused",
            prompt=request.prompt,
            detail=detail,
        )
        return
    # Acknowledge first: Discord allows 3 seconds, and the member sees "thinking…" at once.
    try:
        callback = await interaction.response.defer(thinking=True)
    except discord.HTTPException as exc:
        log.warning("job %s: Discord refused the acknowledgement (%s); abandoning it", job.id, exc.status)
        await bot.runner.abandon(job, "Discord did not accept the acknowledgement in time.")
        return
    message_id = callback.message_id if callback is not None else None
    if message_id is None:
        try:
            message_id = (await interaction.original_response()).id
        except discord.HTTPException as exc:
            # Without the status message's id the job still runs; its result is posted in the channel.
            log.warning("job %s: could not look up the status message (%s)", job.id, exc.status)
    await bot.runner.launch(job, message_id)
