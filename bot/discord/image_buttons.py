"""The buttons under a request of several images: per image (numbered as shown, 1-4) and for the whole
request, within Discord's five rows of five components.

    row 1  V1 V2 V3 V4          Vary: a new request of the same count, that image its only reference
    row 2  U1 U2 U3 U4          Full size: that image alone, as a reply, with its own buttons
    row 3  [Image N → …]        a menu: Edit (the dialog, pre-filled), Animate or Use as reference
    row 4  Reroll Delete Cancel  the whole request (Cancel while images are still rendering)

The fifth row is free, and the menu has room for more actions per image. Every custom_id
carries the job it acts on (image N is the request's job N), so the buttons keep working after a
restart and on any process."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import discord

from bot.core.i18n import N_, t
from bot.core.models import ImageRequest, Job
from bot.core.policy.validation import AttachmentInfo
from bot.core.request_texts import SHOWN, ImageState
from bot.discord.animate_dialog import AnimateButton, open_animate_dialog
from bot.discord.reference_menu import MessageImages, ReferenceModal
from bot.discord.replies import NO_PINGS, private_locale, public_locale, say_privately
from bot.discord.requests import start_request
from bot.discord.stopping import admit
from bot.discord.views import (
    CancelButton,
    DeleteButton,
    EditButton,
    EditModal,
    JobButton,
    RerollButton,
    finished_image,
    image_of_job,
    load_job,
    refresh_urls,
)

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase  # noqa: F401 - named in the Interaction alias below

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBotBase"]
NOT_READY = N_("That image is not there yet (it is still rendering, or it failed).")


def _image_reference(job: Job, attachment: discord.Attachment | None) -> str | None:
    return attachment.url if attachment is not None else (job.result_urls[0] if job.result_urls else None)


async def _the_image(interaction: Interaction, job: Job) -> discord.Attachment | None:
    """Image N as shown in the clicked message (a freshly signed link), else in its recorded message."""
    if interaction.message is not None:
        shown = image_of_job(interaction.message, job)
        if shown is not None:
            return shown
    return await finished_image(interaction.client, job)


class VaryButton(JobButton, template=r"imagine:vary:(?P<job>\d+)"):
    """V1..V4: the same prompt again, as many images as the request had, this image the only reference."""

    action = "vary"
    style = discord.ButtonStyle.primary

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        job = await load_job(interaction, self.job_id)
        if job is None:
            return
        image = await _the_image(interaction, job)
        reference = _image_reference(job, image)
        if reference is None:
            await say_privately(interaction, NOT_READY)
            return
        [fresh] = await refresh_urls(interaction.client, [reference])
        request = ImageRequest(
            job.prompt,
            job.aspect_ratio,
            (fresh,),
            job.style,
            job.style_text,
            source_job_id=job.id,
            source_image_index=1,
        )
        await start_request(interaction, request, count=job.request_size)


class FullSizeButton(JobButton, template=r"imagine:full:(?P<job>\d+)"):
    """U1..U4: the image alone, as a reply to the request's message, with buttons of its own."""

    action = "full"

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        job = await load_job(interaction, self.job_id)
        if job is None:
            return
        image = await _the_image(interaction, job)
        if image is None:
            await say_privately(interaction, NOT_READY)
            return
        private = interaction.message is not None and interaction.message.flags.ephemeral
        await interaction.response.defer(thinking=True, ephemeral=private)
        try:
            data = await image.read()
        except discord.HTTPException as exc:
            log.info("job %s: could not read its image for Full size (%s)", job.id, exc.status)
            await interaction.followup.send(
                t(private_locale(interaction), "The image could not be fetched again. Please try again."),
                ephemeral=True,
                allowed_mentions=NO_PINGS,
            )
            return
        locale = private_locale(interaction) if private else public_locale(interaction)
        text = t(locale, "🔍 Image {number} of request #{id}.", number=job.request_index, id=job.request)
        await interaction.followup.send(
            text,
            file=discord.File(io.BytesIO(data), filename=image.filename),
            view=single_image_view(job.id, locale, private=private),
            ephemeral=private,
            allowed_mentions=NO_PINGS,
        )


class ImageMenu(discord.ui.DynamicItem[discord.ui.Select[Any]], template=r"imagine:image:(?P<request>\d+)"):
    """ "Image N → Edit / Use as reference": one menu for every image of the request. A choice's value is
    `<action>:<job id>`, so the menu needs nothing in memory."""

    def __init__(
        self,
        request_id: int,
        options: Sequence[discord.SelectOption] = (),
        placeholder: str | None = None,
    ) -> None:
        self.request_id = request_id
        super().__init__(
            discord.ui.Select(
                custom_id=f"imagine:image:{request_id}",
                placeholder=placeholder,
                options=list(options) or [discord.SelectOption(label="-", value="none")],
                min_values=1,
                max_values=1,
                disabled=not options,
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        options = item.options if isinstance(item, discord.ui.Select) else []
        return cls(int(match["request"]), options)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await admit(interaction)  # while the bot stops, a choice starts nothing

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        action, _, job_id = (self.item.values[0] if self.item.values else "").partition(":")
        if not job_id.isdigit():
            await say_privately(interaction, NOT_READY)
            return
        job = await load_job(interaction, int(job_id))
        if job is None or job.request != self.request_id:
            return
        if action == "edit":
            await interaction.response.send_modal(EditModal(job, interaction))
            return
        if action == "animate":  # image N is the request's job N, whose one image is its first
            await open_animate_dialog(interaction, job.id, 1)
            return
        image = await _the_image(interaction, job)
        if image is None:
            await say_privately(interaction, NOT_READY)
            return
        reference = AttachmentInfo(image.filename, image.content_type, image.size, image.url)
        images = MessageImages((reference,), (), more=False)
        where = interaction.message.id if interaction.message is not None else job.id
        await interaction.response.send_modal(ReferenceModal(where, images, interaction))


def request_view(
    states: list[ImageState], locale: str | None, *, running: bool, private: bool
) -> discord.ui.View:
    """The buttons under a request's message (`states`: its images in order, as the message shows them).
    A number whose image is not shown yet is there but disabled, so the rows keep their places."""
    view = discord.ui.View(timeout=None)
    head = states[0].job
    for image in states:
        vary = VaryButton(image.job.id, label=f"V{image.number}")
        vary.item.disabled = image.state != SHOWN
        vary.item.row = 0
        view.add_item(vary)
    for image in states:
        full = FullSizeButton(image.job.id, label=f"U{image.number}")
        full.item.disabled = image.state != SHOWN
        full.item.row = 1
        view.add_item(full)
    options: list[discord.SelectOption] = []
    for image in states:
        if image.state != SHOWN:
            continue
        options.append(
            discord.SelectOption(
                label=t(locale, "Image {number} → Edit", number=image.number), value=f"edit:{image.job.id}"
            )
        )
        options.append(
            discord.SelectOption(
                label=t(locale, "Image {number} → Animate", number=image.number),
                value=f"animate:{image.job.id}",
            )
        )
        options.append(
            discord.SelectOption(
                label=t(locale, "Image {number} → Use as reference", number=image.number),
                value=f"ref:{image.job.id}",
            )
        )
    menu = ImageMenu(
        head.request, options, placeholder=t(locale, "Edit, animate or use an image as a reference…")
    )
    menu.item.row = 2
    view.add_item(menu)
    whole: list[JobButton] = [RerollButton(head.id, locale=locale)]
    if not private:
        whole.append(DeleteButton(head.id, locale=locale))
    if running:
        whole.append(CancelButton(head.id, locale=locale))
    for button in whole:
        button.item.row = 3
        view.add_item(button)
    return view


def single_image_view(job_id: int, locale: str | None, *, private: bool = False) -> discord.ui.View:
    """Under one image shown alone (Full size): Vary, Edit, Animate, and Delete where it is public."""
    view = discord.ui.View(timeout=None)
    view.add_item(VaryButton(job_id, label=t(locale, "Vary")))
    view.add_item(EditButton(job_id, locale=locale))
    view.add_item(AnimateButton(job_id, 1, locale))
    if not private:
        view.add_item(DeleteButton(job_id, locale=locale))
    return view


IMAGE_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (VaryButton, FullSizeButton, ImageMenu)
