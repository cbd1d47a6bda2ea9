"""Prompt variations on Discord: `/imagine a {red, blue} car` shows its requester a private preview of
the prompts it makes and the images they cost, with Confirm and Cancel. Only Confirm admits them, each
as its own request with its own status message, through the same admission as any /imagine.

Nothing is written before Confirm, so the preview lives in this process's memory only, for as long as
the /imagine interaction lives (15 minutes): a restart that loses it loses nothing billable, and a press
after that is told plainly that the preview expired. The buttons' ids carry the preview and its member,
so a press by anyone else is refused even when the preview itself is gone."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import weakref
from typing import TYPE_CHECKING, Any, Self

import discord

from bot.adapters.store import StoreError
from bot.core import messages
from bot.core.i18n import N_, t
from bot.core.models import MAX_FOLLOWUPS
from bot.core.policy.prompt_variations import VariationError, has_variations, literal_prompt, variations
from bot.core.policy.quotas import (
    BLOCKED_PROMPT,
    BLOCKED_TEXT,
    CONCURRENCY,
    COOLDOWN,
    UNCHECKED_TEXT,
    discord_time,
)
from bot.core.policy.styles import MemberSettings, RequestDefaults
from bot.core.policy.validation import InputRefused
from bot.core.texts import Text, Verbatim, msg, plural_msg
from bot.discord.members import member_of
from bot.discord.replies import NO_PINGS, private_locale, say_privately
from bot.discord.requests import (
    ADMISSION_BUDGET,
    BUSY,
    REFUSED,
    TOKEN_LIFETIME,
    Draft,
    _admit,
    origin_of,
    post_status_message,
    refuse_bad_input,
    start_request,
)
from bot.discord.stopping import admit

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBotBase"]

SHOWN_PROMPT_CHARS = 300  # of each prompt in the preview and the summary (4 of them fit a message)

NOT_YOUR_PREVIEW = N_("This preview is not yours: only the member who asked can confirm or cancel it.")
EXPIRED = N_(
    "This preview has expired (a preview lasts 15 minutes, and a restart of the bot ends it). Nothing "
    "was made and nothing was counted: run /imagine again."
)
CANCELLED = N_("Cancelled: nothing was made and nothing was counted.")
OTHERS_EXPIRED = N_(
    "This offer has expired (it lasts as long as the preview, and a restart of the bot ends it). The "
    "other prompts were not made and not counted."
)
OTHERS_DROPPED = N_("The other prompts were not made and not counted.")
# Refusals that pass by themselves: images in progress finish, a cooldown ends, a busy database frees.
PASSING = frozenset({CONCURRENCY, COOLDOWN, "busy"})


@dataclasses.dataclass(frozen=True)
class Pending:
    """A preview waiting for its member's answer: the requests Confirm would make."""

    owner_id: int
    drafts: tuple[Draft, ...]
    images_each: int
    expires_at: float  # on the bot's clock
    numbers: tuple[int, ...] = ()  # each draft's place in the preview (1-based); default 1, 2, 3…

    def numbered(self) -> list[tuple[int, Draft]]:
        return list(zip(self.numbers or range(1, len(self.drafts) + 1), self.drafts, strict=True))


# Per bot (tests run several in one process): preview id (the /imagine interaction's id) -> Pending.
_previews: weakref.WeakKeyDictionary[Any, dict[int, Pending]] = weakref.WeakKeyDictionary()


def _held(bot: ImagineBotBase) -> dict[int, Pending]:
    held = _previews.setdefault(bot, {})
    now = bot.clock.time()
    for preview_id in [k for k, p in held.items() if p.expires_at <= now]:
        del held[preview_id]  # expired previews go as new ones come: memory stays bounded
    return held


def _take(bot: ImagineBotBase, preview_id: int) -> Pending | None:
    """The preview, removed so that a second press cannot make its requests twice; None if expired."""
    pending = _held(bot).pop(preview_id, None)
    return pending if pending is not None and pending.expires_at > bot.clock.time() else None


class Blocked(Exception):
    """One of the prompts breaks a server's prompt rule."""

    def __init__(self, prompt: str, text: Text, detail: str | None) -> None:
        super().__init__(prompt)
        self.prompt, self.text, self.detail = prompt, text, detail


def _shown(prompt: str) -> Verbatim:
    return Verbatim(messages.quote_prompt(prompt, SHOWN_PROMPT_CHARS).removeprefix("> "))


async def start_or_preview(interaction: Interaction, draft: Draft) -> None:
    """/imagine's way in: a prompt with variations gets its preview; any other starts as before (a
    prompt whose braces are all escaped, `\\{`, is sent with the braces themselves)."""
    if not has_variations(draft.prompt):
        await start_request(interaction, dataclasses.replace(draft, prompt=literal_prompt(draft.prompt)))
        return
    await _preview(interaction, draft)


async def _expand(interaction: Interaction, draft: Draft) -> tuple[Draft, ...]:
    """The requests the prompt makes, each checked as /imagine checks one (the length limit with the
    style, the prompt rules), each asking for the draft's count (else the member's default): the
    combinations times that count may not exceed the member's per-request limit (as `count` may not).
    VariationError, InputRefused or Blocked name what is wrong and where."""
    bot = interaction.client
    origin = origin_of(interaction)
    # Outside a server: no styles, no settings, and no count limit but the most there can be.
    defaults = RequestDefaults(MemberSettings(), None, private_allowed=False)
    if interaction.guild_id is not None and not origin.is_personal:
        defaults = await bot.store.styles.request_defaults(
            interaction.guild_id, interaction.user.id, draft.style, member_of(interaction).role_ids
        )
    if draft.style is not None and defaults.style is None:
        raise InputRefused(messages.style_unknown(draft.style))  # about the whole prompt, not one
    each_count = draft.count if draft.count is not None else defaults.count
    found = variations(draft.prompt, images_each=each_count, most_images=defaults.count_limit)
    drafts = tuple(dataclasses.replace(draft, prompt=prompt, count=each_count) for prompt in found.prompts)
    for each in drafts:
        try:
            request = each.complete(defaults, bot.settings.max_attachment_bytes)
        except InputRefused as refusal:
            raise InputRefused(
                msg("The prompt {prompt} was refused: {why}", prompt=_shown(each.prompt), why=refusal.text)
            ) from refusal
        match = await bot.runner.rules.check(origin.guild_id, request.full_prompt)
        if match is not None:
            text = BLOCKED_TEXT if match.rule is not None else UNCHECKED_TEXT
            raise Blocked(request.full_prompt, text, match.describe())
    return drafts


async def _preview(interaction: Interaction, draft: Draft) -> None:
    """Check every prompt within the admission's time budget (deferring privately if the database is
    slow), then show the preview, or say privately what is wrong. Nothing is counted either way."""
    bot = interaction.client
    expanding = asyncio.ensure_future(_expand(interaction, draft))
    done, _ = await asyncio.wait({expanding}, timeout=ADMISSION_BUDGET)
    if not done:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as exc:
            log.warning("interaction %s: Discord refused the deferral (%s)", interaction.id, exc.status)
            expanding.cancel()
            return
    refs = len(draft.attachments) + len(draft.extra_urls)
    try:
        drafts = await expanding
    except StoreError as exc:
        log.warning("interaction %s: could not check the prompt variations: %s", interaction.id, exc)
        await say_privately(interaction, BUSY)
        return
    except (VariationError, InputRefused) as refusal:
        await refuse_bad_input(
            interaction, refusal.text, prompt=draft.prompt, aspect_ratio=draft.aspect_ratio, ref_count=refs
        )
        return
    except Blocked as blocked:
        await _refuse_blocked(interaction, draft, blocked)
        return
    held = _held(bot)
    images_each = drafts[0].count or 1
    pending = Pending(
        interaction.user.id, drafts, images_each, bot.clock.time() + TOKEN_LIFETIME.total_seconds()
    )
    held[interaction.id] = pending
    locale = private_locale(interaction)
    view = preview_view(interaction.id, interaction.user.id, locale)
    text = preview_text(pending, locale)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, view=view, ephemeral=True, allowed_mentions=NO_PINGS)
        else:
            await interaction.response.send_message(
                text, view=view, ephemeral=True, allowed_mentions=NO_PINGS
            )
    except discord.HTTPException as exc:
        held.pop(interaction.id, None)
        log.warning("interaction %s: could not show the preview (%s)", interaction.id, exc.status)


async def _refuse_blocked(interaction: Interaction, draft: Draft, blocked: Blocked) -> None:
    """As admission refuses a blocked prompt: privately, naming the expanded prompt that broke a rule,
    then in the usage log (never counted, with the rule) and the mod-log."""
    text = msg("The prompt {prompt} was refused: {why}", prompt=_shown(blocked.prompt), why=blocked.text)
    await say_privately(interaction, text)
    await interaction.client.runner.log_refusal(
        origin_of(interaction),
        prompt=blocked.prompt,
        aspect_ratio=draft.aspect_ratio,
        ref_count=len(draft.attachments) + len(draft.extra_urls),
        reason=BLOCKED_PROMPT,
        detail=blocked.detail,
    )


def preview_text(pending: Pending, locale: str | None) -> str:
    prompts = len(pending.drafts)
    images = prompts * pending.images_each
    head = t(
        locale,
        "**Prompt variations**: your prompt makes {prompts} prompts. Each becomes its own request with "
        "its own message:",
        prompts=prompts,
    )
    lines = [f"> **{i}.** {_shown(d.prompt)}" for i, d in enumerate(pending.drafts, 1)]
    cost = plural_msg(
        "They cost {count} image ({prompts} × {each}), counted as for any request.",
        "They cost {count} images ({prompts} × {each}), counted as for any request.",
        images,
        prompts=prompts,
        each=pending.images_each,
    )
    until = discord_time(pending.expires_at)
    tail = t(locale, "Nothing is made until you confirm. This preview expires {when}.", when=until)
    return messages.clip("\n".join([head, *lines, cost.render(locale), tail]))


@dataclasses.dataclass(frozen=True)
class Outcome:
    number: int
    draft: Draft
    made: bool
    why: Text | str | None = None
    reason: str | None = None  # why not, as the usage log says it ("busy": the database was)


def summary_text(outcomes: list[Outcome], locale: str | None, later: Pending | None = None) -> str:
    """What Confirm made and what not (and why); with `later`, the offer to make the rest then."""
    made = sum(o.made for o in outcomes)
    if made == len(outcomes):
        head = plural_msg(
            "Confirmed: {count} request was made, with its own message.",
            "Confirmed: {count} requests were made, each with its own message.",
            made,
        ).render(locale)
    else:
        head = t(
            locale,
            "Made {made} of {total} requests; the others were not made and not counted:",
            made=made,
            total=len(outcomes),
        )
    lines = []
    for outcome in outcomes:
        shown = f"**{outcome.number}.** {_shown(outcome.draft.prompt)}"
        if outcome.made:
            lines.append(f"✅ {shown}")
            continue
        why = outcome.why or REFUSED
        lines.append(f"❌ {shown}: {why.render(locale) if isinstance(why, Text) else t(locale, why)}")
    if later is not None:
        offer = plural_msg(
            "The other one can be made once that has passed: press **Make it** (until {when}).",
            "The other {count} can be made once that has passed: press **Make them** (until {when}).",
            len(later.drafts),
            when=discord_time(later.expires_at),
        )
        lines.append(offer.render(locale))
    return messages.clip("\n".join([head, *lines]))


def _followups_before(index: int, total: int, personal: bool) -> int:
    """What a job counts as already sent of its interaction's follow-ups. The requests of one Confirm
    share its interaction, but each job counts its follow-ups alone: in personal use, where Discord
    allows MAX_FOLLOWUPS, the status messages take `total` of them and what is left is shared out, one
    per job (a job without one shows its image in its status message)."""
    if not personal:
        return index + 1
    spare = MAX_FOLLOWUPS - total
    return MAX_FOLLOWUPS - 1 if index < spare else MAX_FOLLOWUPS


async def _make_all(interaction: Interaction, pending: Pending) -> list[Outcome]:
    """Admit each prompt as its own request, in order, as /imagine admits one; each admitted job gets
    its public status message (a follow-up of the Confirm press) and is sent. A prompt admission
    refuses (the daily images ran out, the running limit...) is not made and says why."""
    bot = interaction.client
    origin = origin_of(interaction)
    outcomes: list[Outcome] = []
    made = 0
    for number, draft in pending.numbered():
        try:
            admitted, _, decision, jobs = await _admit(interaction, draft, draft.count)
        except StoreError as exc:
            log.warning("interaction %s: admission failed: %s", interaction.id, exc)
            outcomes.append(Outcome(number, draft, made=False, why=BUSY, reason="busy"))
            continue
        except InputRefused as refusal:
            outcomes.append(Outcome(number, draft, made=False, why=refusal.text))
            continue
        if not jobs:
            detail = decision.matched_rule.describe() if decision.matched_rule else None
            why = decision.message or REFUSED
            outcomes.append(Outcome(number, draft, made=False, why=why, reason=decision.reason))
            await bot.runner.report_refusal(
                origin, reason=decision.reason or "refused", prompt=admitted.full_prompt, detail=detail
            )
            continue
        message_id = await post_status_message(interaction, jobs)
        followups = _followups_before(made, len(pending.drafts), origin.is_personal)
        await bot.runner.launch(jobs, message_id, followups=followups)
        made += 1
        outcomes.append(Outcome(number, draft, made=True))
    return outcomes


def _the_rest(pending: Pending, outcomes: list[Outcome]) -> Pending | None:
    """The prompts refused only for something that passes by itself (images in progress, the cooldown,
    a busy database), offered again until the preview expires; None if there are none. A quota that
    ran out, a ban or a rule is not offered again: pressing later would not change it."""
    rest = [o for o in outcomes if not o.made and o.reason in PASSING]
    if not rest:
        return None
    return dataclasses.replace(
        pending, drafts=tuple(o.draft for o in rest), numbers=tuple(o.number for o in rest)
    )


class PreviewButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine:variations:(?P<action>confirm|cancel|more|drop):(?P<preview>\d+):(?P<owner>\d+)",
):
    """A button under a preview, `imagine:variations:<action>:<preview id>:<member id>`: Confirm or
    Cancel, and after a Confirm that could not make every prompt yet, Make them (`more`) or Skip them
    (`drop`)."""

    def __init__(
        self, action: str, preview_id: int, owner_id: int, locale: str | None = None, others: int = 0
    ) -> None:
        self.action, self.preview_id, self.owner_id = action, preview_id, owner_id
        makes = action in ("confirm", "more")
        labels = {
            "confirm": lambda: t(locale, "Confirm"),
            "cancel": lambda: t(locale, "Cancel"),
            "more": lambda: plural_msg("Make it", "Make them", others).render(locale),
            "drop": lambda: plural_msg("Skip it", "Skip them", others).render(locale),
        }
        super().__init__(
            discord.ui.Button(
                label=labels[action](),
                style=discord.ButtonStyle.success if makes else discord.ButtonStyle.secondary,
                custom_id=f"imagine:variations:{action}:{preview_id}:{owner_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(match["action"], int(match["preview"]), int(match["owner"]))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await admit(interaction)  # while the bot stops, a press starts nothing

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        if interaction.user.id != self.owner_id:
            await say_privately(interaction, NOT_YOUR_PREVIEW)
            return
        bot, locale = interaction.client, private_locale(interaction)
        first = self.action in ("confirm", "cancel")  # the preview itself, not the offer of the rest
        pending = _take(bot, self.preview_id)
        if pending is None or self.action in ("cancel", "drop"):
            if pending is None:
                text = t(locale, EXPIRED if first else OTHERS_EXPIRED)
            else:
                text = t(locale, CANCELLED if first else OTHERS_DROPPED)
            await interaction.response.edit_message(content=text, view=None, allowed_mentions=NO_PINGS)
            return
        # Answered at once (Discord allows 3 seconds); the admissions follow.
        making = plural_msg("Making {count} request…", "Making {count} requests…", len(pending.drafts))
        await interaction.response.edit_message(
            content=making.render(locale), view=None, allowed_mentions=NO_PINGS
        )
        outcomes = await _make_all(interaction, pending)
        rest = _the_rest(pending, outcomes)
        view: discord.ui.View | None = None
        if rest is not None:
            _held(bot)[self.preview_id] = rest
            view = discord.ui.View(timeout=None)
            for action in ("more", "drop"):
                view.add_item(PreviewButton(action, self.preview_id, self.owner_id, locale, len(rest.drafts)))
        try:
            await interaction.edit_original_response(
                content=summary_text(outcomes, locale, rest), view=view, allowed_mentions=NO_PINGS
            )
        except discord.HTTPException as exc:
            log.warning("interaction %s: could not show what was made (%s)", interaction.id, exc.status)


def preview_view(preview_id: int, owner_id: int, locale: str | None) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(PreviewButton("confirm", preview_id, owner_id, locale))
    view.add_item(PreviewButton("cancel", preview_id, owner_id, locale))
    return view


PREVIEW_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (PreviewButton,)
