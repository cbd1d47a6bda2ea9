"""/history's pages and their buttons: Newer/Older (keyset-paged by request) and Post again, which posts
a request's images, or a video, again from their Discord messages.

Each button's custom_id carries what it needs (`imagine:history:<member>:<page>:<prev|next>:<cursor>`,
`imagine:repost:<job>`), so the buttons keep working after a restart with nothing in memory."""

from __future__ import annotations

import contextlib
import io
import math
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot.adapters.media import DownloadError, download_image
from bot.adapters.result_files import download_video
from bot.core import messages
from bot.core.i18n import N_, t
from bot.core.image_file import ImageFile
from bot.core.models import Job, JobStatus
from bot.core.request_texts import history_requests_text
from bot.discord.animate_dialog import private_result_buttons, result_buttons
from bot.discord.checks import may_act_on
from bot.discord.places import server_of
from bot.discord.rate_limit import RateLimiter
from bot.discord.replies import NO_PINGS, private_locale, public_locale, say_privately
from bot.discord.sink import DEFAULT_UPLOAD_LIMIT
from bot.discord.stopping import admit
from bot.discord.video_delivery import MEGABYTE, fit_video, upload_limit, video_filename
from bot.discord.views import JobButton, image_of_job, load_job, result_message

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

Interaction = discord.Interaction["ImagineBotBase"]

HISTORY_PAGE_SIZE = 5  # requests a page lists
REPOST_INTERVAL = 10.0  # seconds between two "Post again" of one member: reposts are public messages
# Where a delivered image was public: posted in a server's channel, or in the status message there.
PUBLIC_DELIVERIES = ("channel", "interaction")
ONLY_THE_REQUESTER = N_(
    "This image was sent privately: only the member who asked for it can have it sent again."
)
# What the requester reads above a private image (False) or video (True) sent again.
SENT_AGAIN_PRIVATELY = {
    False: N_("Here is the image of request #{id} again, for your eyes only."),
    True: N_("Here is the video of request #{id} again, for your eyes only."),
}

_repost_limiters: weakref.WeakKeyDictionary[ImagineBotBase, RateLimiter] = weakref.WeakKeyDictionary()


def _repost_limiter(bot: ImagineBotBase) -> RateLimiter:
    limiter = _repost_limiters.get(bot)
    if limiter is None:
        limiter = _repost_limiters[bot] = RateLimiter(bot.clock, REPOST_INTERVAL)
    return limiter


def was_public(job: Job) -> bool:
    """The image was shown in a server's channel (so posting it again there shows nothing new). A private
    delivery (a message only the requester saw, a DM) and personal use (outside any server the bot
    shares) were not: such an image is sent again only to its requester, privately."""
    return (
        job.guild_id is not None and not job.is_personal and (job.delivery or "channel") in PUBLIC_DELIVERIES
    )


def may_post_again(job: Job, viewer_id: int) -> bool:
    """Whether /history offers Post again for the image to this viewer."""
    return was_public(job) or viewer_id == job.user_id


# -- what Post again uploads -------------------------------------------------------------------------


def video_of_job(message: discord.Message, job: Job) -> discord.Attachment | None:
    """The job's clip among a message's attachments (named as video_delivery names it)."""
    name = video_filename(job)
    return next((a for a in message.attachments if a.filename == name), None)


@dataclass(frozen=True)
class _Kind:
    """How Post again finds, fetches and speaks of one kind of result."""

    find: Callable[[discord.Message, Job], discord.Attachment | None]
    download: Callable[..., Awaitable[ImageFile]]  # the safe fetch, the bytes checked for the kind
    gone: str
    unfetched: str


_IMAGE = _Kind(
    image_of_job,
    download_image,
    N_("That image is no longer on Discord (its message was deleted), so it cannot be posted again."),
    N_("The image could not be fetched again ({why})."),
)
_VIDEO = _Kind(
    video_of_job,
    download_video,
    N_("That video is no longer on Discord (its message was deleted), so it cannot be posted again."),
    N_("The video could not be fetched again ({why})."),
)


async def _fetched_again(
    bot: ImagineBotBase, job: Job, private: bool, locale: str
) -> tuple[bytes, str] | str:
    """The result's bytes and file name, or what the member reads when it cannot be had. A public result
    comes from its message (a freshly signed link); a private one, whose message the bot cannot fetch
    (a message only its requester saw), from the image service's link while that still answers. The
    bytes are uploaded again, not linked, so they go through the checks a finished result does."""
    kind = _VIDEO if job.media == "video" else _IMAGE
    message = await result_message(bot, job)
    found = kind.find(message, job) if message is not None else None
    if found is not None:
        url = found.url
    elif private and job.result_urls:
        url = job.result_urls[0]
    else:
        return t(locale, kind.gone)
    try:
        fetched = await kind.download(bot.session, url, max_bytes=bot.settings.max_result_bytes)
    except DownloadError as exc:
        return t(locale, kind.unfetched, why=messages.inert(exc.text.render(locale)))
    assert fetched.data is not None
    return fetched.data, found.filename if found is not None else f"imagine-{job.id}-1.{fetched.extension}"


async def _fitted(bot: ImagineBotBase, job: Job, clip: bytes, locale: str) -> bytes | str:
    """The clip within the server's upload limit, which may have fallen since it was posted (a boost
    ended): itself, re-encoded to fit, or what the member reads when even that does not fit."""
    limit = upload_limit(bot, job, DEFAULT_UPLOAD_LIMIT)
    data = await fit_video(job, clip, limit)
    if data is not None:
        return data
    return t(
        locale,
        "The video is {size} MB, more than the {limit} MB this server accepts now, and could not be made "
        "small enough, so it cannot be posted again. Its original message (linked in /history) still "
        "shows it.",
        size=f"{len(clip) / MEGABYTE:.1f}",
        limit=f"{limit / MEGABYTE:.0f}",
    )


async def _posted_files(
    bot: ImagineBotBase, job: Job, private: bool, locale: str
) -> list[discord.File] | str:
    """What Post again uploads: the video, or the image with, for a request of several, the request's
    other posted images in its order; or what the member reads when the clicked one cannot be had."""
    got = await _fetched_again(bot, job, private, locale)
    if isinstance(got, str):
        return got
    if job.media == "video":
        fitted = await _fitted(bot, job, got[0], locale)
        return fitted if isinstance(fitted, str) else [discord.File(io.BytesIO(fitted), filename=got[1])]
    files = [discord.File(io.BytesIO(got[0]), filename=got[1])]
    if job.request_size <= 1:
        return files
    together = []
    for each in await bot.store.jobs.of_request(job.request):
        if each.status is not JobStatus.DELIVERED or each.result_message_id is None:
            continue
        also = await _fetched_again(bot, each, private, locale)
        if not isinstance(also, str):
            together.append(discord.File(io.BytesIO(also[0]), filename=also[1]))
    return together or files


# -- the buttons -------------------------------------------------------------------------------------


class PostAgainButton(JobButton, template=r"imagine:repost:(?P<job>\d+)"):
    """Post a public image or video again in the channel, or send a private one again to its requester
    alone."""

    action = "repost"

    def __init__(self, job_id: int, label: str | None = None, locale: str | None = None) -> None:
        super().__init__(job_id, label or t(locale, "Post #{id} again", id=job_id))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        bot = interaction.client
        job = await load_job(interaction, self.job_id)
        if job is None:
            return
        private = not was_public(job)
        if private and interaction.user.id != job.user_id:
            await say_privately(interaction, ONLY_THE_REQUESTER)
            return
        locale = private_locale(interaction)
        wait = _repost_limiter(bot).wait_needed((interaction.guild_id, interaction.user.id))
        if wait > 0:
            await say_privately(
                interaction,
                t(
                    locale,
                    "You just posted an image again. Please wait {seconds} s before the next one.",
                    seconds=math.ceil(wait),
                ),
            )
            return
        await interaction.response.defer(thinking=True, ephemeral=private)
        files = await _posted_files(bot, job, private, locale)
        if isinstance(files, str):
            if not private:
                # The first follow-up would become the public "thinking…" message: it goes instead,
                # and the member alone reads why nothing was posted.
                with contextlib.suppress(discord.HTTPException):
                    await interaction.delete_original_response()
            await interaction.followup.send(files, ephemeral=True, allowed_mentions=NO_PINGS)
            return
        if private:
            if job.media == "video":
                text = t(
                    locale, "Here is the video of request #{id} again, for your eyes only.", id=job.request
                )
            else:
                text = t(
                    locale, "Here is the image of request #{id} again, for your eyes only.", id=job.request
                )
            buttons = private_result_buttons(job, locale)  # none under a video
            await interaction.followup.send(
                text,
                files=files,
                view=buttons if buttons is not None else discord.utils.MISSING,
                ephemeral=True,
                allowed_mentions=NO_PINGS,
            )
            return
        await interaction.followup.send(
            messages.reposted_text(job, interaction.user.id, public_locale(interaction)),
            files=files,
            view=result_buttons(job, public_locale(interaction)),
            allowed_mentions=NO_PINGS,
        )


class HistoryPageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine:history:(?P<member>\d+):(?P<page>\d+):(?P<label>prev|next)(?::(?P<cursor>\d+))?",
):
    """`page` is the page it leads to (for the label); `cursor` the job id the page starts beyond. A
    button from before keyset paging has no cursor and leads to the newest page."""

    def __init__(
        self, member_id: int, page: int, label: str, cursor: int | None = None, locale: str | None = None
    ) -> None:
        self.member_id = member_id
        self.page = page
        self.label = label
        self.cursor = cursor
        suffix = f":{cursor}" if cursor is not None else ""
        text = t(locale, "◀ Newer") if label == "prev" else t(locale, "Older ▶")
        super().__init__(
            discord.ui.Button(
                label=text,
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine:history:{member_id}:{page}:{label}{suffix}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> HistoryPageButton:
        cursor = int(match["cursor"]) if match["cursor"] else None
        return cls(int(match["member"]), int(match["page"]), match["label"], cursor)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await admit(interaction)  # while the bot stops, a click starts nothing

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        if not may_act_on(interaction, self.member_id):
            await say_privately(interaction, N_("Only moderators can page through another member's history."))
            return
        if self.cursor is None:
            page, older_than, newer_than = 0, None, None
        else:
            page = self.page
            older_than = self.cursor if self.label == "next" else None
            newer_than = self.cursor if self.label == "prev" else None
        content, view = await history_page(
            interaction.client,
            server_of(interaction),
            self.member_id,
            page,
            older_than=older_than,
            newer_than=newer_than,
            locale=private_locale(interaction),
            viewer_id=interaction.user.id,
        )
        await interaction.response.edit_message(content=content, view=view, allowed_mentions=NO_PINGS)


async def history_page(
    bot: ImagineBotBase,
    guild_id: int | None,
    member_id: int,
    page: int,
    *,
    older_than: int | None = None,
    newer_than: int | None = None,
    locale: str | None = None,
    viewer_id: int | None = None,
) -> tuple[str, discord.ui.View]:
    """One page of a member's requests, as `viewer_id` (the member themselves by default) sees it. Pages
    are keyset-paged by request (the buttons carry the id the next page starts beyond), so page 5,000
    costs what page 1 does. Post again is offered where the image was public, and for a private image
    only to its requester (who gets it privately)."""
    viewer = member_id if viewer_id is None else viewer_id
    store = bot.store
    groups, total, capped, more = await store.jobs.delivered_requests(
        guild_id, member_id, HISTORY_PAGE_SIZE, older_than=older_than, newer_than=newer_than
    )
    if newer_than is not None and len(groups) < HISTORY_PAGE_SIZE:
        # Newer requests were deleted meanwhile: this is the newest page now.
        page = 0
        groups, total, capped, more = await store.jobs.delivered_requests(
            guild_id, member_id, HISTORY_PAGE_SIZE
        )
    # `total` counts requests, as the pages list them; past the cap (or after requests were posted or
    # deleted since the first page) the Older button's page still counts.
    pages = max(page + 1 + (1 if more else 0), -(-total // HISTORY_PAGE_SIZE))
    view = discord.ui.View(timeout=None)
    for jobs in groups:
        posted = [j for j in jobs if j.status is JobStatus.DELIVERED and j.result_message_id]
        if posted and may_post_again(posted[0], viewer):
            view.add_item(PostAgainButton(posted[0].id, locale=locale))
    if page > 0 and groups:
        view.add_item(HistoryPageButton(member_id, page - 1, "prev", max(j.id for j in groups[0]), locale))
    if more and groups:
        view.add_item(HistoryPageButton(member_id, page + 1, "next", groups[-1][0].request, locale))
    return messages.clip(
        history_requests_text(groups, member_id, page, pages, total, capped=capped, locale=locale)
    ), view


HISTORY_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (PostAgainButton, HistoryPageButton)
