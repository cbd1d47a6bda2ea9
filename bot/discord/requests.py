"""Starting a job from any interaction (/imagine, Reroll, Edit): admit under the guild's rules,
acknowledge at once, hand it to the runner. Refusals are private."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import discord

from bot.adapters.reference_check import check_linked_references
from bot.adapters.store import StoreError
from bot.core import messages
from bot.core.i18n import N_, t
from bot.core.models import PERSONAL_CONTEXTS, ImageRequest, Job, Origin, Stage
from bot.core.policy.quotas import BAD_INPUT, Decision
from bot.core.policy.styles import MemberSettings, RequestDefaults
from bot.core.policy.validation import AttachmentInfo, InputRefused, validate_request
from bot.core.texts import Text
from bot.discord.members import member_of
from bot.discord.places import context_of
from bot.discord.replies import NO_PINGS, private_locale, public_locale, say_privately

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

log = logging.getLogger(__name__)

# Interaction tokens live 15 minutes; the sink keeps a safety margin of its own.
TOKEN_LIFETIME = timedelta(minutes=15)
ADMISSION_BUDGET = 1.5
"""Seconds admission may take before the interaction is deferred privately: well inside Discord's
3 seconds, with room for the deferral's own round trip."""
# A refused decision always says why; this is only there so a refusal without a text still reads well.
REFUSED = N_("This request was not accepted. Nothing was started and nothing was counted.")
ACCEPTED_LATE = N_("Your request was accepted; its progress is shown in the channel.")
BUSY = N_(
    "The bot could not take your request right now (its database is busy). Nothing was started and "
    "nothing was counted. Please try again in a moment."
)


def origin_of(interaction: discord.Interaction[ImagineBotBase]) -> Origin:
    context = context_of(interaction)
    personal = context in PERSONAL_CONTEXTS
    return Origin(
        source="discord",
        # Personal use belongs to no server, even when asked in one the bot is not in.
        guild_id=None if personal else interaction.guild_id,
        place_guild_id=interaction.guild_id if personal else None,
        context=context,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        interaction_id=interaction.id,
        application_id=interaction.application_id,
        interaction_token=interaction.token,
        token_expires_at=interaction.created_at.timestamp() + TOKEN_LIFETIME.total_seconds(),
        # Messages the sink sends later are written in these: private ones in the member's language,
        # public ones in the server's. Personal use belongs to no server: all of it is the member's.
        locale=private_locale(interaction),
        guild_locale=private_locale(interaction) if personal else public_locale(interaction),
    )


async def refuse(
    interaction: discord.Interaction[ImagineBotBase],
    text: Text | str,
    *,
    reason: str,
    prompt: str,
    detail: str | None = None,
) -> None:
    """A private refusal; the runner then puts it in the mod-log. Nothing public appears."""
    await say_privately(interaction, text)
    await interaction.client.runner.report_refusal(
        origin_of(interaction), reason=reason, prompt=prompt, detail=detail
    )


async def refuse_bad_input(
    interaction: discord.Interaction[ImagineBotBase],
    text: Text | str,
    *,
    prompt: str,
    aspect_ratio: str | None,
    ref_count: int,
) -> None:
    """Bad input (/imagine or the Edit dialog): answered first, so a busy database cannot delay the
    answer, then the runner writes it to the usage log (never counted) and the mod-log."""
    await say_privately(interaction, text)
    await interaction.client.runner.log_refusal(
        origin_of(interaction),
        prompt=prompt,
        aspect_ratio=aspect_ratio,
        ref_count=ref_count,
        reason=BAD_INPUT,
        detail=str(text)[:300],
    )


@dataclasses.dataclass(frozen=True)
class Draft:
    """A request as the member typed it (/imagine, "Use as reference"), still to be completed with
    their /settings and the server's style, and checked. That needs the database, so it happens
    within the admission's time budget."""

    prompt: str
    aspect_ratio: str | None
    attachments: tuple[AttachmentInfo, ...] = ()
    style: str | None = None  # named by the member; None: their default style, if any
    extra_urls: tuple[str, ...] = ()  # references that are links, not attachments (image embeds)

    def complete(self, defaults: RequestDefaults, max_attachment_bytes: int) -> ImageRequest:
        """The request, with the member's defaults for what they left out; InputRefused if bad."""
        ratio = self.aspect_ratio or defaults.settings.aspect_ratio
        if self.style is not None and defaults.style is None:
            raise InputRefused(messages.style_unknown(self.style))
        request = validate_request(
            self.prompt,
            ratio,
            self.attachments,
            max_attachment_bytes=max_attachment_bytes,
            style=defaults.style,
        )
        if self.extra_urls:
            request = dataclasses.replace(request, reference_urls=(*request.reference_urls, *self.extra_urls))
        return request


async def start_request(
    interaction: discord.Interaction[ImagineBotBase], request: ImageRequest | Draft
) -> None:
    """Admit, acknowledge, launch. Admission normally takes milliseconds and the acknowledgement is
    then the public "thinking…" that becomes the status message. If it has not finished within
    ADMISSION_BUDGET (a busy database), the interaction is deferred privately first, so Discord's
    3-second deadline is never missed, and the answer follows. A Draft is completed and checked as
    part of the admission; bad input gets a private answer."""
    bot = interaction.client
    admission = asyncio.ensure_future(_admit(interaction, request))
    done, _ = await asyncio.wait({admission}, timeout=ADMISSION_BUDGET)
    acknowledged = True
    if not done:
        log.info("interaction %s: admission is slow; deferring privately", interaction.id)
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as exc:
            log.warning("interaction %s: Discord refused the deferral (%s)", interaction.id, exc.status)
            acknowledged = False
    try:
        admitted, decision, jobs = await admission
    except StoreError as exc:
        log.warning("interaction %s: admission failed: %s", interaction.id, exc)
        if acknowledged:
            await say_privately(interaction, BUSY)
        return
    except InputRefused as refusal:
        if acknowledged:
            assert isinstance(request, Draft)
            await refuse_bad_input(
                interaction,
                refusal.text,
                prompt=request.prompt,
                aspect_ratio=request.aspect_ratio,
                ref_count=len(request.attachments) + len(request.extra_urls),
            )
        return
    if not jobs:
        if not acknowledged:
            return
        detail = decision.matched_rule.describe() if decision.matched_rule else None
        await refuse(
            interaction,
            decision.message or REFUSED,
            reason=decision.reason or "refused",
            prompt=admitted.full_prompt,
            detail=detail,
        )
        return
    if not acknowledged:
        await bot.runner.abandon(jobs, "Discord did not accept the acknowledgement in time.")
        return
    if not done:
        await _launch_after_private_deferral(interaction, jobs)
        return
    # Acknowledge first: Discord allows 3 seconds, and the member sees "thinking…" at once.
    try:
        callback = await interaction.response.defer(thinking=True)
    except discord.HTTPException as exc:
        log.warning(
            "request %s: Discord refused the acknowledgement (%s); abandoning it", jobs[0].request, exc.status
        )
        await bot.runner.abandon(jobs, "Discord did not accept the acknowledgement in time.")
        return
    message_id = callback.message_id if callback is not None else None
    if message_id is None:
        try:
            message_id = (await interaction.original_response()).id
        except discord.HTTPException as exc:
            # Without the status message's id the job still runs; its result is posted in the channel.
            log.warning("request %s: could not look up the status message (%s)", jobs[0].request, exc.status)
    await bot.runner.launch(jobs, message_id)


async def _admit(
    interaction: discord.Interaction[ImagineBotBase], request: ImageRequest | Draft
) -> tuple[ImageRequest, Decision, list[Job]]:
    """Admission, with the member's /settings: a Draft's defaults, and where the image goes (a
    private way only if the server allows it)."""
    bot = interaction.client
    origin = origin_of(interaction)
    # Outside a server there are no styles, no member settings and no private-images switch.
    defaults = RequestDefaults(MemberSettings(), None, private_allowed=False)
    if interaction.guild_id is not None and not origin.is_personal:
        named = request.style if isinstance(request, Draft) else None
        defaults = await bot.store.styles.request_defaults(interaction.guild_id, interaction.user.id, named)
        origin = dataclasses.replace(origin, deliver_to=defaults.deliver_to)
    if isinstance(request, Draft):
        links = request.extra_urls
        request = request.complete(defaults, bot.settings.max_attachment_bytes)
        # Linked images (embeds) are read like result images before anything is admitted.
        await check_linked_references(bot.session, links, max_bytes=bot.settings.max_attachment_bytes)
    if origin.is_personal:
        personal = bot.settings.default_personal_quota
        decision, jobs = await bot.runner.admit_personal(request, origin, personal)
    else:
        quota = bot.settings.default_daily_quota
        decision, jobs = await bot.runner.admit(request, origin, member_of(interaction), quota)
    return request, decision, jobs


async def _launch_after_private_deferral(
    interaction: discord.Interaction[ImagineBotBase], jobs: list[Job]
) -> None:
    """The private "thinking…" says the request was accepted, and a public follow-up becomes the
    status message, as the public deferral would have been on the fast path."""
    bot = interaction.client
    message_id: int | None = None
    # Counted for personal use, where Discord allows only MAX_FOLLOWUPS per interaction.
    followups = 0
    try:
        followups += 1
        await interaction.followup.send(
            t(private_locale(interaction), ACCEPTED_LATE), ephemeral=True, allowed_mentions=NO_PINGS
        )
        followups += 1
        status = await interaction.followup.send(
            messages.status_text(jobs[0], Stage.QUEUED, 0.0, None, locale=jobs[0].guild_locale),
            wait=True,
            allowed_mentions=NO_PINGS,
        )
        message_id = status.id
    except discord.HTTPException as exc:
        # The job still runs; without a status message its result is posted in the channel.
        log.warning("request %s: could not post the status message (%s)", jobs[0].request, exc.status)
    await bot.runner.launch(jobs, message_id, followups=followups)
