"""Animate: a short video made from an image the bot posted (its Animate button), from an image someone
posted (the message menu), or from a prompt (/animate). Each asks what it needs, checks it before
anything is billed, and starts the job through `start_request` like /imagine.

The Animate button's custom_id carries the job and the image's place in it (`imagine:animate:<job>:<n>`),
so it keeps working after a restart with nothing in memory. `open_animate_dialog(interaction, job_id,
image_index)` is the one way to the dialog, for the button and for any other place offering "Animate"
for an image of a job (e.g. a menu choosing one of several images).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import TYPE_CHECKING, Any, Self

import discord

from bot.adapters.reference_check import check_linked_references
from bot.core import messages
from bot.core.i18n import N_, t
from bot.core.models import ImageRequest, Job
from bot.core.policy.quotas import GuildPolicy
from bot.core.policy.validation import AttachmentInfo, InputRefused
from bot.core.policy.video_request import validate_video_request
from bot.core.texts import Text, msg
from bot.core.video_contract import (
    DEFAULT_IMAGES_PER_VIDEO_SECOND,
    DEFAULT_VIDEO_DURATION,
    MAX_MOTION_PROMPT_CHARS,
    VIDEO_DURATIONS,
    video_cost,
)
from bot.discord.places import server_of
from bot.discord.reference_menu import fresh_links, images_of
from bot.discord.replies import private_locale, say_privately
from bot.discord.requests import refuse_bad_input, start_request
from bot.discord.stopping import Dialog, admit
from bot.discord.views import NOT_FOUND, DeleteButton, private_result_view, result_view

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBotBase"]
VIDEOS_OFF = N_("Videos are turned off in this server.")
NO_IMAGE_TO_ANIMATE = N_("That message has no image to animate.")
IMAGE_GONE = N_("The image is no longer available on Discord, so it cannot be animated.")
# The files of a job's images are named imagine-<job>-<n>.<ext> (bot/discord/delivery_routes.py).
_JOB_FILE = re.compile(r"^imagine-(\d+)-(\d+)\.\w+$")


# -- what a video costs here ----------------------------------------------------------------------------


async def policy_of(bot: ImagineBotBase, guild_id: int | None) -> GuildPolicy | None:
    """The server's policy (its video switch and rate); None outside a server (personal use)."""
    if guild_id is None:
        return None
    return await bot.store.settings.guild_policy(guild_id)


def rate_of(policy: GuildPolicy | None) -> float:
    return policy.video_rate if policy is not None else DEFAULT_IMAGES_PER_VIDEO_SECOND


async def allowed_rate(interaction: Interaction) -> float | None:
    """What a second of video costs here, when videos may be made here; None, the member told why,
    when the server turned them off."""
    policy = await policy_of(interaction.client, server_of(interaction))
    if policy is not None and not policy.videos_enabled:
        await say_privately(interaction, VIDEOS_OFF)
        return None
    return rate_of(policy)


async def start_video(interaction: Interaction, request: ImageRequest, rate: float) -> None:
    """Admit and start a checked video request, as /imagine starts an image: quotas, credits, the
    server's cap, cooldowns, the running cap, bans and prompt rules apply, the video counting as its
    seconds at `rate` images a second, rounded up. The status message shows that cost."""
    seconds = request.video_seconds or DEFAULT_VIDEO_DURATION
    await start_request(interaction, request, units_per_task=video_cost(seconds, rate))


async def refuse_video_input(interaction: Interaction, text: Text | str, prompt: str, refs: int) -> None:
    await refuse_bad_input(interaction, text, prompt=prompt, aspect_ratio=None, ref_count=refs)


# -- the Animate button under an image the bot posted -----------------------------------------------------


class AnimateButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"imagine:animate:(?P<job>\d+):(?P<index>\d+)"
):
    """Opens the Animate dialog for image `index` (1-based) of the job."""

    def __init__(self, job_id: int, index: int = 1, locale: str | None = None) -> None:
        self.job_id, self.index = job_id, index
        super().__init__(
            discord.ui.Button(
                label=t(locale, "Animate"),
                emoji="🎬",
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine:animate:{job_id}:{index}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["job"]), int(match["index"]))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await admit(interaction)  # while the bot stops, a click starts nothing

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        await open_animate_dialog(interaction, self.job_id, self.index)


async def open_animate_dialog(interaction: Interaction, job_id: int, image_index: int) -> None:
    """The Animate dialog for image `image_index` (1-based) of job `job_id`: the motion prompt (the
    image's prompt, editable) and the duration with what each costs here. Refused privately when the
    job is unknown here, is not an image, or videos are off."""
    bot = interaction.client
    job = await bot.store.jobs.get(job_id)
    if job is None or job.guild_id != server_of(interaction) or job.media == "video":
        await say_privately(interaction, NOT_FOUND)
        return
    rate = await allowed_rate(interaction)
    if rate is None:
        return
    await interaction.response.send_modal(AnimateModal(interaction, rate, job=job, image_index=image_index))


class AnimateModal(Dialog):
    """The motion prompt and the duration. From a job's image (`job`, `image_index`) or from another
    message's image (`image`: an attachment or an embed's link)."""

    def __init__(
        self,
        opened_by: Interaction,
        rate: float,
        *,
        job: Job | None = None,
        image_index: int = 1,
        image: AttachmentInfo | str | None = None,
        default_prompt: str | None = None,
    ) -> None:
        # One id per opening: discord.py finds an open dialog by its custom_id alone (see EditModal).
        custom_id = f"imagine:animatemodal:{job.id if job else 0}:{opened_by.user.id}:{opened_by.id}"
        locale = private_locale(opened_by)
        super().__init__(title=t(locale, "Animate this image"), timeout=600, custom_id=custom_id)
        self.job, self.image_index, self.image = job, image_index, image
        # The image the member clicked under: for a private delivery the bot cannot fetch the message
        # later, so its attachment (freshly signed now) is kept.
        self.clicked_image = _clicked_image(opened_by, job, image_index)
        prompt = default_prompt if default_prompt is not None else (job.prompt if job else None)
        self.prompt: discord.ui.TextInput[AnimateModal] = discord.ui.TextInput(
            label=t(locale, "Motion prompt"),
            style=discord.TextStyle.paragraph,
            placeholder=t(locale, "How should the picture move?"),
            default=prompt[:MAX_MOTION_PROMPT_CHARS] if prompt else None,
            max_length=MAX_MOTION_PROMPT_CHARS,
            required=True,
        )
        seconds = ", ".join(str(d) for d in VIDEO_DURATIONS)
        self.duration: discord.ui.TextInput[AnimateModal] = discord.ui.TextInput(
            label=t(locale, "Duration in seconds ({durations})", durations=seconds),
            placeholder=messages.video_cost_line(rate, locale)[:100],
            default=str(DEFAULT_VIDEO_DURATION),
            max_length=3,
            required=True,
        )
        self.add_item(self.prompt)
        self.add_item(self.duration)

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        bot = interaction.client
        prompt = self.prompt.value
        image_url = self.image if isinstance(self.image, str) else None
        if self.job is not None:
            image_url = await job_image_url(bot, self.job, self.image_index) or self.clicked_image
            if image_url is None:
                await say_privately(interaction, IMAGE_GONE)
                return
        attachments = (self.image,) if isinstance(self.image, AttachmentInfo) else ()
        try:
            # Everything typed is checked before anything is fetched or billed; a file that is not
            # an image is refused here by what Discord says of it.
            request = validate_video_request(
                prompt,
                duration=self.duration.value,
                attachments=attachments,
                image_url=image_url,
                max_attachment_bytes=bot.settings.max_attachment_bytes,
                source_job_id=self.job.id if self.job else None,
                source_image_index=self.image_index if self.job else None,
            )
            if isinstance(self.image, str):
                # An embed's link may lead anywhere: read like a result image first.
                await check_linked_references(
                    bot.session, (self.image,), max_bytes=bot.settings.max_attachment_bytes
                )
        except InputRefused as refusal:
            await refuse_video_input(interaction, refusal.text, prompt, 1)
            return
        # Read again now: the server may have turned videos off or changed their cost meanwhile.
        rate = await allowed_rate(interaction)
        if rate is None:
            return
        if attachments:
            # Signed attachment links expire: the image service gets a fresh one.
            request = dataclasses.replace(
                request, reference_urls=tuple(await fresh_links(bot, [attachments[0].url]))
            )
        await start_video(interaction, request, rate)


def _clicked_image(opened_by: Interaction, job: Job | None, index: int) -> str | None:
    clicked = opened_by.message
    if job is None or clicked is None:
        return None
    images = [a for a in clicked.attachments if (a.content_type or "").startswith("image/")]
    return images[index - 1].url if len(images) >= index else None


async def job_image_url(bot: ImagineBotBase, job: Job, index: int) -> str | None:
    """Image `index` of the job as it is now on Discord (its message gives a freshly signed link), found
    by its file name; None when the message or the image is gone."""
    if job.result_message_id is None or job.result_deleted_at is not None:
        return None
    channel = bot.get_partial_messageable(job.result_channel_id or job.channel_id or 0, guild_id=job.guild_id)
    try:
        message = await channel.fetch_message(job.result_message_id)
    except discord.HTTPException as exc:
        log.info("job %s: cannot fetch its image message (%s)", job.id, exc.status)
        return None
    images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
    named = [a for a in images if a.filename.startswith(f"imagine-{job.id}-{index}.")]
    if named:
        return named[0].url
    return images[index - 1].url if len(images) >= index else None


# -- "Animate" on any message with an image ---------------------------------------------------------------


async def open_menu_dialog(interaction: Interaction, message: discord.Message) -> None:
    """The message menu's answer: the dialog for the message's first image, or a private word."""
    if interaction.guild_id is None:
        await say_privately(interaction, N_("“Animate” works on messages in a server channel, not in DMs."))
        return
    found = images_of(message)
    if found.count == 0:
        # A file that is not an image (a video, a PDF) is named, so the member sees why.
        if message.attachments:
            await refuse_video_input(
                interaction,
                msg(
                    "{name} is not an image, so it cannot be animated.",
                    name=f"`{message.attachments[0].filename}`",
                ),
                "",
                1,
            )
            return
        await say_privately(interaction, NO_IMAGE_TO_ANIMATE)
        return
    rate = await allowed_rate(interaction)
    if rate is None:
        return
    image: AttachmentInfo | str = found.attachments[0] if found.attachments else found.embed_urls[0]
    # One of the bot's own images: its job's prompt is the default. Anyone else's: no default.
    job = await _job_of(interaction, message)
    await interaction.response.send_modal(
        AnimateModal(
            interaction,
            rate,
            image=image,
            default_prompt=job.prompt if job is not None else "",
        )
    )


async def _job_of(interaction: Interaction, message: discord.Message) -> Job | None:
    me = interaction.client.user
    if me is None or message.author.id != me.id or not message.attachments:
        return None
    match = _JOB_FILE.match(message.attachments[0].filename)
    if match is None:
        return None
    job = await interaction.client.store.jobs.get(int(match[1]))
    return job if job is not None and job.guild_id == interaction.guild_id else None


# -- the buttons under a finished job ----------------------------------------------------------------------


def result_buttons(job: Job, locale: str | None) -> discord.ui.View:
    """Under a public result: an image's Reroll, Edit, Delete and Animate; a video's Delete (a video is
    not edited or animated again)."""
    if job.media == "video":
        view = discord.ui.View(timeout=None)
        view.add_item(DeleteButton(job.id, locale=locale))
        return view
    view = result_view(job.id, locale)
    if job.request_size <= 1:
        view.add_item(AnimateButton(job.id, 1, locale))
    return view


def private_result_buttons(job: Job, locale: str | None) -> discord.ui.View | None:
    """Under a result only its requester sees."""
    if job.media == "video":
        return None
    view = private_result_view(job.id, locale)
    if job.request_size <= 1:
        view.add_item(AnimateButton(job.id, 1, locale))
    return view
