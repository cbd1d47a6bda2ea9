"""Starting a job from any interaction (/imagine, Reroll, Edit): admit under the guild's rules,
acknowledge at once, hand it to the runner. Refusals are private."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import re
import secrets
import time
import weakref
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self

import discord

from bot.adapters.reference_check import check_linked_references
from bot.adapters.store import StoreError
from bot.core import messages
from bot.core.i18n import N_, nt, t
from bot.core.models import PERSONAL_CONTEXTS, ImageRequest, Job, Origin, Stage
from bot.core.policy.quotas import BAD_INPUT, Decision
from bot.core.policy.styles import MemberSettings, RequestDefaults
from bot.core.policy.validation import AttachmentInfo, InputRefused, validate_request
from bot.core.texts import Text, plural_msg
from bot.discord.members import member_of
from bot.discord.places import context_of
from bot.discord.replies import NO_PINGS, private_locale, public_locale, say_privately
from bot.discord.stopping import admit as admit_while_running

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
    text: Text | str | None,
    *,
    reason: str,
    prompt: str,
    detail: str | None = None,
) -> None:
    """A private refusal (None: already answered); the runner then puts it in the mod-log. Nothing
    public appears."""
    if text is not None:
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
    count: int | None = None  # images asked for; None: the member's /settings default, else 1

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
    interaction: discord.Interaction[ImagineBotBase],
    request: ImageRequest | Draft,
    *,
    count: int | None = None,
    units_per_task: int = 1,
) -> None:
    """Admit, acknowledge, launch. Admission normally takes milliseconds and the acknowledgement is
    then the public "thinking…" that becomes the status message. If it has not finished within
    ADMISSION_BUDGET (a busy database), the interaction is deferred privately first, so Discord's
    3-second deadline is never missed, and the answer follows. A Draft is completed and checked as
    part of the admission; bad input gets a private answer.

    A Draft asks for its own `count` of images (tasks), or the member's /settings default; an
    ImageRequest (a button's) for `count`, else 1. Above the member's limit it is refused, and a
    request that does not fit what they have left is offered with the count that does
    (`FewerButton`). `units_per_task`: what each task counts as against quotas (a video: its seconds
    at the server's rate, bot/discord/animate_dialog.py)."""
    bot = interaction.client
    if isinstance(request, Draft):
        count = request.count  # None: the member's default
    elif count is None:
        count = 1  # a button's request (Reroll, Edit): one image unless it says otherwise
    admission = asyncio.ensure_future(_admit(interaction, request, count, units_per_task))
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
        admitted, asked, decision, jobs = await admission
    except StoreError as exc:
        log.warning("interaction %s: admission failed: %s", interaction.id, exc)
        if acknowledged:
            await say_privately(interaction, BUSY)
        return
    except InputRefused as refusal:
        if acknowledged:
            refs = (
                len(request.attachments) + len(request.extra_urls)
                if isinstance(request, Draft)
                else len(request.reference_urls)
            )
            await refuse_bad_input(
                interaction,
                refusal.text,
                prompt=request.prompt,
                aspect_ratio=request.aspect_ratio,
                ref_count=refs,
            )
        return
    if not jobs:
        if not acknowledged:
            return
        detail = decision.matched_rule.describe() if decision.matched_rule else None
        text: Text | str | None = decision.message or REFUSED
        if 0 < decision.fits < asked:
            await offer_fewer(
                interaction, admitted, decision.message or REFUSED, decision.fits, units_per_task
            )
            text = None  # answered, with the offer
        await refuse(
            interaction, text, reason=decision.reason or "refused", prompt=admitted.full_prompt, detail=detail
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
    interaction: discord.Interaction[ImagineBotBase],
    request: ImageRequest | Draft,
    count: int | None,
    units_per_task: int = 1,
) -> tuple[ImageRequest, int, Decision, list[Job]]:
    """Admission, with the member's /settings: a Draft's defaults, where the image goes (a private
    way only if the server allows it) and how many images (within the member's count limit)."""
    bot = interaction.client
    origin = origin_of(interaction)
    # Outside a server there are no styles, no member settings, no private-images switch and no
    # count limit but MAX_COUNT.
    defaults = RequestDefaults(MemberSettings(), None, private_allowed=False)
    if interaction.guild_id is not None and not origin.is_personal:
        named = request.style if isinstance(request, Draft) else None
        member = member_of(interaction)
        defaults = await bot.store.styles.request_defaults(
            interaction.guild_id, interaction.user.id, named, member.role_ids
        )
        origin = dataclasses.replace(origin, deliver_to=defaults.deliver_to)
    if count is None:
        count = defaults.count
    elif not 1 <= count <= defaults.count_limit:
        raise InputRefused(count_refusal(count, defaults.count_limit))
    if isinstance(request, Draft):
        links = request.extra_urls
        request = request.complete(defaults, bot.settings.max_attachment_bytes)
        # Linked images (embeds) are read like result images before anything is admitted.
        await check_linked_references(bot.session, links, max_bytes=bot.settings.max_attachment_bytes)
    if origin.is_personal:
        personal = bot.settings.default_personal_quota
        decision, jobs = await bot.runner.admit_personal(
            request, origin, personal, count=count, units_per_task=units_per_task
        )
    else:
        quota = bot.settings.default_daily_quota
        member = member_of(interaction)
        decision, jobs = await bot.runner.admit(
            request, origin, member, quota, count=count, units_per_task=units_per_task
        )
    return request, count, decision, jobs


async def post_status_message(
    interaction: discord.Interaction[ImagineBotBase], jobs: list[Job]
) -> int | None:
    """The request's public status message, posted as a follow-up of the interaction: its id, or None
    when Discord refused it (the job still runs; without a status message its result is posted in the
    channel)."""
    try:
        status = await interaction.followup.send(
            messages.status_text(jobs[0], Stage.QUEUED, 0.0, None, locale=jobs[0].guild_locale),
            wait=True,
            allowed_mentions=NO_PINGS,
        )
    except discord.HTTPException as exc:
        log.warning("request %s: could not post the status message (%s)", jobs[0].request, exc.status)
        return None
    return status.id


async def _launch_after_private_deferral(
    interaction: discord.Interaction[ImagineBotBase], jobs: list[Job]
) -> None:
    """The private "thinking…" says the request was accepted, and a public follow-up becomes the
    status message, as the public deferral would have been on the fast path."""
    bot = interaction.client
    message_id: int | None = None
    # Counted for personal use, where Discord allows only MAX_FOLLOWUPS per interaction.
    followups = 1
    try:
        await interaction.followup.send(
            t(private_locale(interaction), ACCEPTED_LATE), ephemeral=True, allowed_mentions=NO_PINGS
        )
    except discord.HTTPException as exc:
        # The job still runs; without a status message its result is posted in the channel.
        log.warning("request %s: could not post the status message (%s)", jobs[0].request, exc.status)
    else:
        followups += 1
        message_id = await post_status_message(interaction, jobs)
    await bot.runner.launch(jobs, message_id, followups=followups)


# -- a request of several images that does not fit: the count that does, one click away ----------------

OFFER_LIFETIME = 15 * 60.0
"""Seconds an offer is kept: as long as the private reply it is on can be used (an interaction's token)."""
OFFERS_KEPT = 10_000
OFFER_GONE = N_(
    "This offer is no longer available (it was used, it expired, or the bot restarted). Nothing was "
    "started and nothing was counted. Run /imagine again."
)


def count_refusal(count: int, limit: int) -> Text:
    return plural_msg(
        "You asked for {asked} images, but you may ask for at most 1 image per request here. Nothing "
        "was started and nothing was counted.",
        "You asked for {asked} images, but you may ask for at most {count} images per request here. "
        "Nothing was started and nothing was counted.",
        limit,
        asked=count,
    )


@dataclasses.dataclass(frozen=True)
class Offer:
    request: ImageRequest
    user_id: int
    expires_at: float  # time.monotonic()
    units_per_task: int = 1


class Offers:
    """Requests that did not fit, kept for their "make fewer" button: in this process's memory, by a
    random token that the button's custom_id carries.

    Memory and not the store, because an offer is short-lived and private: it sits on a private reply
    that only its requester sees and can use for 15 minutes, and a button interaction of a server
    reaches the process running that server's shard, the one that made the offer (personal use: the
    shard of DMs, likewise). After a restart the button still answers, by the DynamicItem's template:
    the offer is gone, and the member is told to run /imagine again; nothing is billed until a click
    admits the request anew, under the quotas of that moment."""

    def __init__(self, lifetime: float = OFFER_LIFETIME, most: int = OFFERS_KEPT) -> None:
        self.lifetime = lifetime
        self.most = most
        self._offers: collections.OrderedDict[str, Offer] = collections.OrderedDict()

    def put(self, request: ImageRequest, user_id: int, units_per_task: int = 1) -> str:
        now = time.monotonic()
        while self._offers and (
            len(self._offers) >= self.most or next(iter(self._offers.values())).expires_at <= now
        ):
            self._offers.popitem(last=False)
        token = secrets.token_hex(8)
        self._offers[token] = Offer(request, user_id, now + self.lifetime, units_per_task)
        return token

    def take(self, token: str, user_id: int) -> Offer | None:
        """The offer, once: a second click (or another member's) finds nothing."""
        offer = self._offers.get(token)
        if offer is None or offer.user_id != user_id:
            return None
        del self._offers[token]
        return offer if offer.expires_at > time.monotonic() else None


# One cache per bot (a bot is one process in production; tests run several in one process).
_OFFERS: weakref.WeakKeyDictionary[object, Offers] = weakref.WeakKeyDictionary()


def offers_of(bot: object) -> Offers:
    offers = _OFFERS.get(bot)
    if offers is None:
        offers = _OFFERS[bot] = Offers()
    return offers


async def offer_fewer(
    interaction: discord.Interaction[ImagineBotBase],
    request: ImageRequest,
    text: Text | str,
    fits: int,
    units_per_task: int = 1,
) -> None:
    """The refusal, privately, with a button that makes the request with the count that fits."""
    locale = private_locale(interaction)
    token = offers_of(interaction.client).put(request, interaction.user.id, units_per_task)
    refusal = text.render(locale) if isinstance(text, Text) else t(locale, text)
    question = nt(locale, "Make 1 image instead?", "Make {count} images instead?", fits)
    view = discord.ui.View(timeout=None)
    view.add_item(FewerButton(token, fits, label=nt(locale, "Make 1 image", "Make {count} images", fits)))
    content = messages.clip(f"{refusal}\n{question}")
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True, view=view, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(content, ephemeral=True, view=view, allowed_mentions=NO_PINGS)


class FewerButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine:fewer:(?P<token>[0-9a-f]{16}):(?P<count>[1-4])",
):
    """ "Make 2 images": the offered request with the count that fitted. Its custom_id carries the
    offer's token and the count; the request itself is in `Offers`."""

    def __init__(self, token: str, count: int, label: str | None = None) -> None:
        self.token = token
        self.count = count
        super().__init__(
            discord.ui.Button(
                label=label or str(count),
                style=discord.ButtonStyle.primary,
                custom_id=f"imagine:fewer:{token}:{count}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(match["token"], int(match["count"]))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await admit_while_running(interaction)  # while the bot stops, a click starts nothing

    async def callback(self, interaction: discord.Interaction[ImagineBotBase]) -> None:  # type: ignore[override]
        offer = offers_of(interaction.client).take(self.token, interaction.user.id)
        if offer is None:
            await say_privately(interaction, OFFER_GONE)
            return
        # Admitted anew: if the quota changed since the offer, this says so (or offers again).
        await start_request(interaction, offer.request, count=self.count, units_per_task=offer.units_per_task)
