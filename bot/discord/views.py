"""The buttons on a job's messages (Cancel on its status message; Reroll, Edit and Delete under its
result) and the Edit dialog. /history's pages and Post again are in history_view.py.

Each button's custom_id carries the job id
(`imagine:<action>:<job>`), and the job row holds the rest, so every button keeps working after a
restart with nothing in memory."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import TYPE_CHECKING, Any, ClassVar, Self

import discord
from discord.http import Route

from bot.core.i18n import N_, nt, t
from bot.core.image_contract import ASPECT_RATIOS
from bot.core.models import ImageRequest, Job, JobStatus
from bot.core.policy.styles import Style
from bot.core.policy.validation import InputRefused, validate_request
from bot.core.request_texts import request_cancelled_text
from bot.core.runner import job_states
from bot.core.texts import msg
from bot.discord.checks import NOT_YOURS, may_act_on
from bot.discord.places import server_of
from bot.discord.replies import NO_PINGS, private_locale, say_privately
from bot.discord.requests import FewerButton, refuse_bad_input, start_request
from bot.discord.stopping import Dialog, admit

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBotBase"]
MODAL_PROMPT_MAX = 4000  # Discord's cap for a text input
NOT_FOUND = N_("That request no longer exists (it may have been removed from the bot's records).")


async def load_job(interaction: Interaction, job_id: int) -> Job | None:
    """The job a button acts on, if it belongs to the server it is clicked in; otherwise they are told."""
    return await _load(interaction, job_id)


async def _load(interaction: Interaction, job_id: int) -> Job | None:
    job = await interaction.client.store.jobs.get(job_id)
    if job is None or job.guild_id != server_of(interaction):
        await say_privately(interaction, NOT_FOUND)
        return None
    return job


async def _load_own(interaction: Interaction, job_id: int) -> Job | None:
    """The job, if the clicker asked for it or is a moderator; otherwise they are told why not."""
    job = await _load(interaction, job_id)
    if job is None:
        return None
    if not may_act_on(interaction, job.user_id):
        await say_privately(interaction, NOT_YOURS)
        return None
    return job


def job_style(job: Job) -> Style | None:
    """The style a job was made with, as it was then: Reroll and Edit keep it."""
    if job.style is None or job.style_text is None:
        return None
    return Style(job.style, job.style_text)


# -- fresh links --------------------------------------------------------------------------------------


def _is_discord_attachment(url: str) -> bool:
    # Discord signs attachment links with ex/is/hm query parameters; they expire after a while.
    return "ex=" in url and "hm=" in url and "attachments/" in url


async def refresh_urls(bot: ImagineBotBase, urls: list[str]) -> list[str]:
    """Signed Discord attachment links expire: ask Discord for fresh ones. Others are kept."""
    stale = [u for u in urls if _is_discord_attachment(u)]
    if not stale:
        return urls
    try:
        answer = await bot.http.request(
            Route("POST", "/attachments/refresh-urls"), json={"attachment_urls": stale}
        )
    except discord.HTTPException as exc:
        log.warning("could not refresh %s attachment links (%s)", len(stale), exc.status)
        return urls
    fresh = {item["original"]: item["refreshed"] for item in answer.get("refreshed_urls", [])}
    return [fresh.get(u, u) for u in urls]


async def result_message(bot: ImagineBotBase, job: Job) -> discord.Message | None:
    """The message the job's result was posted in, as it is now on Discord (fetching it gives freshly
    signed links to its files); None when it is gone or cannot be fetched."""
    if job.result_message_id is None or job.result_deleted_at is not None:
        return None
    channel = bot.get_partial_messageable(job.result_channel_id or job.channel_id or 0, guild_id=job.guild_id)
    try:
        return await channel.fetch_message(job.result_message_id)
    except discord.HTTPException as exc:
        log.info("job %s: cannot fetch its result message (%s)", job.id, exc.status)
        return None


async def finished_image(bot: ImagineBotBase, job: Job) -> discord.Attachment | None:
    """The delivered image as it is now on Discord, with a freshly signed link."""
    message = await result_message(bot, job)
    return None if message is None else image_of_job(message, job)


def image_of_job(message: discord.Message, job: Job) -> discord.Attachment | None:
    """The job's (first) image among a message's attachments: a request's message holds several jobs'
    images, each named `imagine-<job>-<n>`; an older message's only image is its job's."""
    images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
    own = [a for a in images if a.filename.startswith(f"imagine-{job.id}-")]
    if own:
        return own[0]
    return images[0] if images and job.request_size <= 1 else None


# -- buttons on a running job's status message ------------------------------------------------------


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"imagine:job:(?P<job>\d+)"):
    """A button about one job: `imagine:<action>:<job id>`. Subclasses set the action and its look;
    the label is a catalog text, shown in `locale` (the language of the message the button is on)."""

    action: ClassVar[str] = "job"
    label: ClassVar[str] = ""
    emoji: ClassVar[str | None] = None
    style: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary

    def __init__(self, job_id: int, label: str | None = None, locale: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(
            discord.ui.Button(
                label=label or t(locale, self.label),
                emoji=self.emoji,
                style=self.style,
                custom_id=f"imagine:{self.action}:{job_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["job"]))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await admit(interaction)  # while the bot stops, a click starts nothing


class CancelButton(JobButton, template=r"imagine:cancel:(?P<job>\d+)"):
    action = "cancel"
    label = N_("Cancel")

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        job = await _load_own(interaction, self.job_id)
        if job is None:
            return
        if job.request_size > 1:
            await cancel_request(interaction, job)
            return
        on_status_message = interaction.message is not None and interaction.message.id == job.message_id
        # The runner decides the refund, ends the job and, for a click elsewhere (/queue), updates the
        # status message through the sink; a click on the status message edits it in the answer.
        cancelled = await interaction.client.runner.cancel(
            job, interaction.user.id, announce=not on_status_message
        )
        if cancelled is None:
            await say_privately(interaction, N_("Too late to cancel: this request has already finished."))
        elif on_status_message:
            await interaction.response.edit_message(
                content=cancelled.text, view=None, allowed_mentions=NO_PINGS
            )
        else:
            await say_privately(
                interaction, t(private_locale(interaction), "Cancelled request #{id}.", id=job.id)
            )


async def cancel_request(interaction: Interaction, job: Job) -> None:
    """Cancel every image of the job's request that has not finished, each refunded by the usual rules
    (the runner decides per image). The request's message then shows them as cancelled (the sink, after
    the last one), and the status message says how many were stopped."""
    bot = interaction.client
    jobs = await bot.store.jobs.of_request(job.request)
    open_jobs = [j for j in jobs if job_states.allowed(j.status, JobStatus.CANCELLED)]
    cancelled = 0
    for n, each in enumerate(open_jobs):
        # The last one announces it: the sink refreshes the request's message and the status message.
        if await bot.runner.cancel(each, interaction.user.id, announce=n == len(open_jobs) - 1) is not None:
            cancelled += 1
    if not cancelled:
        await say_privately(interaction, N_("Too late to cancel: this request has already finished."))
        return
    placed = await bot.store.deliveries.message(job.request)
    # The status message may be the request's message itself (the channel refused the bot): then it
    # keeps its images, and the sink's refresh shows the cancellation there.
    on_request_message = (
        placed is not None and interaction.message is not None and placed.message_id == interaction.message.id
    )
    on_status_message = interaction.message is not None and interaction.message.id == job.message_id
    if on_status_message and not on_request_message:
        now = bot.clock.time()
        text = request_cancelled_text(
            jobs, interaction.user.id, cancelled, now - jobs[0].created_at, locale=job.guild_locale
        )
        await interaction.response.edit_message(content=text, view=None, allowed_mentions=NO_PINGS)
        return
    locale = private_locale(interaction)
    await say_privately(
        interaction,
        nt(
            locale,
            "Cancelled {count} image of request #{id}.",
            "Cancelled {count} images of request #{id}.",
            cancelled,
            id=job.request,
        ),
    )


def status_view(job_id: int, locale: str | None = None) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id, locale=locale))
    return view


# -- buttons under a finished image -----------------------------------------------------------------


class RerollButton(JobButton, template=r"imagine:reroll:(?P<job>\d+)"):
    action = "reroll"
    label = N_("Reroll")
    emoji = "🔁"
    style = discord.ButtonStyle.primary

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        job = await _load(interaction, self.job_id)
        if job is None:
            return
        references = await refresh_urls(interaction.client, job.reference_urls)
        # The same request, style included (its text as it was: a later change of the style does not
        # change what a Reroll makes).
        request = ImageRequest(job.prompt, job.aspect_ratio, tuple(references), job.style, job.style_text)
        # A request of several images is made again with as many.
        await start_request(interaction, request, count=job.request_size)


class EditButton(JobButton, template=r"imagine:edit:(?P<job>\d+)"):
    action = "edit"
    label = N_("Edit")
    emoji = "✏️"

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        job = await _load(interaction, self.job_id)
        if job is None:
            return
        await interaction.response.send_modal(EditModal(job, interaction))


class EditModal(Dialog):
    """The prompt, prefilled; the finished image becomes the reference of the new job."""

    def __init__(self, job: Job, opened_by: Interaction) -> None:
        # discord.py finds an open dialog by its custom_id alone: one id per job would let a second
        # member's dialog replace the first one's, and the first edit would be dropped. The member and
        # the click that opened it make each dialog's id its own.
        custom_id = f"imagine:editmodal:{job.id}:{opened_by.user.id}:{opened_by.id}"
        locale = private_locale(opened_by)
        super().__init__(title=t(locale, "Edit this image"), timeout=600, custom_id=custom_id)
        self.job_id = job.id
        # An image only its requester sees (a private delivery) cannot be fetched from the channel
        # later: the clicked message's own image, freshly signed, is the reference then.
        clicked = opened_by.message
        self.clicked_image: str | None = None
        if clicked is not None:
            image = image_of_job(clicked, job)
            self.clicked_image = image.url if image is not None else None
        self.prompt: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label=t(locale, "Prompt"),
            style=discord.TextStyle.paragraph,
            default=job.prompt[:MODAL_PROMPT_MAX],
            max_length=MODAL_PROMPT_MAX,
        )
        self.aspect: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label=t(locale, "Aspect ratio ({ratios})", ratios=", ".join(ASPECT_RATIOS)),
            default=job.aspect_ratio or "",
            required=False,
            max_length=5,
        )
        self.add_item(self.prompt)
        self.add_item(self.aspect)

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        bot = interaction.client
        job = await _load(interaction, self.job_id)
        if job is None:
            return
        ratio = self.aspect.value.strip() or None
        if ratio is not None and ratio not in ASPECT_RATIOS:
            text = msg(
                "The aspect ratio must be one of {ratios}, or left blank.", ratios=", ".join(ASPECT_RATIOS)
            )
            await refuse_bad_input(
                interaction, text, prompt=self.prompt.value, aspect_ratio=ratio, ref_count=1
            )
            return
        image = await finished_image(bot, job)
        image_url = image.url if image is not None else self.clicked_image
        if image_url is None:
            await say_privately(
                interaction,
                N_("The original image is no longer available on Discord, so it cannot be edited."),
            )
            return
        try:
            request = validate_request(
                self.prompt.value,
                ratio,
                [],
                max_attachment_bytes=bot.settings.max_attachment_bytes,
                style=job_style(job),
            )
        except InputRefused as refusal:
            await refuse_bad_input(
                interaction, refusal.text, prompt=self.prompt.value, aspect_ratio=ratio, ref_count=1
            )
            return
        await start_request(interaction, dataclasses.replace(request, reference_urls=(image_url,)))


class DeleteButton(JobButton, template=r"imagine:delete:(?P<job>\d+)"):
    action = "delete"
    label = N_("Delete")
    emoji = "🗑️"
    style = discord.ButtonStyle.danger

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        job = await _load_own(interaction, self.job_id)
        if job is None:
            return
        if interaction.message is None:
            await say_privately(interaction, N_("That message is already gone."))
            return
        await interaction.response.defer(ephemeral=True, thinking=False)
        try:
            await interaction.message.delete()
        except discord.HTTPException as exc:
            log.warning(
                "job %s: could not delete message %s (%s)", job.id, interaction.message.id, exc.status
            )
            await say_privately(interaction, N_("The message could not be deleted. Please try again."))
            return
        # A request's message holds the images of all its jobs: each of them is recorded as deleted.
        jobs = await interaction.client.store.jobs.of_request(job.request) if job.request_size > 1 else [job]
        for each in jobs:
            if interaction.message.id == each.result_message_id:
                await interaction.client.runner.record_deleted(each.id)


def result_view(job_id: int, locale: str | None = None) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(job_id, locale=locale))
    view.add_item(EditButton(job_id, locale=locale))
    view.add_item(DeleteButton(job_id, locale=locale))
    return view


def private_result_view(job_id: int, locale: str | None = None) -> discord.ui.View:
    """Under an image only its requester sees: nothing to delete (they dismiss it themselves)."""
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(job_id, locale=locale))
    view.add_item(EditButton(job_id, locale=locale))
    return view


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    CancelButton,
    RerollButton,
    EditButton,
    DeleteButton,
    FewerButton,  # the count that fits, offered when a request of several images does not
)
