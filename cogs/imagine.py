"""/imagine: check the input, admit the request under the guild's rules, acknowledge at once, and
hand it to the job runner."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages
from bot.api import MAX_PROMPT_CHARS
from bot.discord_sink import NO_PINGS
from bot.models import Origin
from bot.quotas import BAD_INPUT, Member
from bot.validation import AttachmentInfo, InputRefused, validate_request

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

# Interaction tokens live 15 minutes; the sink keeps a safety margin of its own.
TOKEN_LIFETIME = timedelta(minutes=15)
GUILD_ONLY = "This command works in a server channel, not in DMs: quotas and images belong to a server."

ASPECT_CHOICES = [
    app_commands.Choice(name="Square 1:1", value="1:1"),
    app_commands.Choice(name="Portrait 2:3", value="2:3"),
    app_commands.Choice(name="Landscape 3:2", value="3:2"),
    app_commands.Choice(name="Tall 9:16", value="9:16"),
    app_commands.Choice(name="Wide 16:9", value="16:9"),
]


def _attachment_info(attachment: discord.Attachment) -> AttachmentInfo:
    # The URL is passed on exactly as Discord gives it: its signed query string is what lets the
    # image service download it.
    return AttachmentInfo(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        url=attachment.url,
    )


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


class Imagine(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def refuse(
        self,
        interaction: discord.Interaction[ImagineBot],
        text: str,
        *,
        reason: str,
        prompt: str,
        detail: str | None = None,
    ) -> None:
        """A private refusal, plus a mod-log entry; nothing public appears."""
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)
        entry = messages.modlog_refusal(interaction.user.id, interaction.channel_id, reason, prompt, detail)
        await self.bot.sink.modlog(interaction.guild_id, entry)

    @app_commands.command(
        name="imagine", description="Make an image from a prompt (and optional reference images)"
    )
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What the image should show",
        aspect_ratio="Shape of the image (ignored when reference images decide the size)",
        image1="A reference image to edit or draw from",
        image2="Another reference image",
        image3="Another reference image",
        image4="Another reference image",
        image5="Another reference image",
    )
    @app_commands.choices(aspect_ratio=ASPECT_CHOICES)
    async def imagine(
        self,
        interaction: discord.Interaction[ImagineBot],
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        aspect_ratio: app_commands.Choice[str] | None = None,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
    ) -> None:
        if interaction.guild_id is None:
            # Discord hides guild-only commands in DMs, but a stale client may still send one.
            await interaction.response.send_message(GUILD_ONLY, ephemeral=True, allowed_mentions=NO_PINGS)
            return
        attachments = [a for a in (image1, image2, image3, image4, image5) if a is not None]
        ratio = aspect_ratio.value if aspect_ratio else None
        try:
            request = validate_request(
                prompt,
                ratio,
                [_attachment_info(a) for a in attachments],
                max_attachment_bytes=self.bot.settings.max_attachment_bytes,
            )
        except InputRefused as refusal:
            await self.bot.store.log_refusal(
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                user_id=interaction.user.id,
                prompt=prompt,
                aspect_ratio=ratio,
                ref_count=len(attachments),
                reason=BAD_INPUT,
                detail=str(refusal)[:300],
                now=self.bot.clock.time(),
            )
            await self.refuse(interaction, str(refusal), reason=BAD_INPUT, prompt=prompt)
            return

        decision, job = await self.bot.runner.admit(
            request, origin_of(interaction), member_of(interaction), self.bot.settings.default_daily_quota
        )
        if job is None:
            detail = decision.matched_rule.describe() if decision.matched_rule else None
            await self.refuse(
                interaction,
                decision.message,
                reason=decision.reason or "refused",
                prompt=prompt,
                detail=detail,
            )
            return

        # Acknowledge first: Discord allows 3 seconds, and the member sees "thinking…" at once.
        try:
            callback = await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:
            log.warning("job %s: Discord refused the acknowledgement (%s); abandoning it", job.id, exc.status)
            await self.bot.runner.abandon(job, "Discord did not accept the acknowledgement in time.")
            return
        message_id = callback.message_id if callback is not None else None
        if message_id is None:
            message_id = (await interaction.original_response()).id
        await self.bot.runner.launch(job, message_id)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Imagine(bot))
