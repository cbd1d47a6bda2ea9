""" "Use as reference": a message's images (attachments and image embeds) as the references of a new
job, with the prompt typed in a dialog. The job goes through `start_request` like /imagine.

Attachments are Discord's own files, checked from what Discord says of them (type, size). An embed's
image link may point anywhere (a link preview, a webhook's embed), so it is read before the job is
admitted, like a result image (`check_linked_references`: public addresses only, type and size), and
a link that fails refuses the request privately, naming it; nothing is sent or counted."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import discord

from bot.core import messages
from bot.core.i18n import t
from bot.core.image_contract import ASPECT_RATIOS, MAX_REFERENCE_IMAGES
from bot.core.policy.validation import AttachmentInfo
from bot.core.texts import msg
from bot.discord.replies import private_locale, say_privately
from bot.discord.requests import Draft, refuse_bad_input, start_request
from bot.discord.stopping import Dialog
from bot.discord.views import MODAL_PROMPT_MAX, refresh_urls

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBotBase"]
# A link that expires within this many seconds is refreshed before it is handed to the image service.
EXPIRY_MARGIN = 600.0


@dataclasses.dataclass(frozen=True)
class MessageImages:
    """A message's images: attachments (checked like /imagine's) and image embeds (links only)."""

    attachments: tuple[AttachmentInfo, ...]
    embed_urls: tuple[str, ...]  # read and checked at admission (requests.Draft.extra_urls)
    more: bool  # the message had more than MAX_REFERENCE_IMAGES

    @property
    def count(self) -> int:
        return len(self.attachments) + len(self.embed_urls)


def images_of(message: discord.Message) -> MessageImages:
    """The first MAX_REFERENCE_IMAGES images of a message: attached images first, then embeds that
    show an image (an image link's preview, or a rich embed's image)."""
    attachments = [
        AttachmentInfo(a.filename, a.content_type, a.size, a.url)
        for a in message.attachments
        if (a.content_type or "").startswith("image/")
    ]
    embed_urls: list[str] = []
    for embed in message.embeds:
        url = embed.image.url or (embed.thumbnail.url if embed.type == "image" else None) or None
        if url and url.startswith(("https://", "http://")) and url not in embed_urls:
            embed_urls.append(url)
    total = len(attachments) + len(embed_urls)
    attachments = attachments[:MAX_REFERENCE_IMAGES]
    embed_urls = embed_urls[: MAX_REFERENCE_IMAGES - len(attachments)]
    return MessageImages(tuple(attachments), tuple(embed_urls), total > MAX_REFERENCE_IMAGES)


def expires_soon(url: str, now: float) -> bool:
    """A signed Discord link (`ex` is its expiry, in hex seconds) that has expired or soon will."""
    values = parse_qs(urlsplit(url).query).get("ex")
    if not values:
        return False
    try:
        return int(values[0], 16) - EXPIRY_MARGIN <= now
    except ValueError:
        return True


async def fresh_links(bot: ImagineBotBase, urls: list[str]) -> list[str]:
    """Links that expired (or are about to) are refreshed through Discord; the others are kept."""
    now = time.time()
    stale = [u for u in urls if expires_soon(u, now)]
    if not stale:
        return urls
    fresh = dict(zip(stale, await refresh_urls(bot, stale), strict=True))
    return [fresh.get(u, u) for u in urls]


async def open_reference_dialog(interaction: Interaction, message: discord.Message) -> None:
    """The context menu's answer: the prompt dialog, or a private word when there is nothing to use."""
    if interaction.guild_id is None:
        await say_privately(interaction, messages.GUILD_ONLY_REFERENCE)
        return
    images = images_of(message)
    if images.count == 0:
        await say_privately(interaction, messages.REFERENCE_NO_IMAGES)
        return
    await interaction.response.send_modal(ReferenceModal(message.id, images, interaction))


class ReferenceModal(Dialog):
    """The prompt for a job whose references are another message's images."""

    def __init__(self, message_id: int, images: MessageImages, opened_by: Interaction) -> None:
        # discord.py finds an open dialog by its custom_id alone: the member and the click that opened
        # it make each dialog its own (two members using the same message get one each).
        custom_id = f"imagine:refmodal:{message_id}:{opened_by.user.id}:{opened_by.id}"
        # The dialog only its member sees: in their language.
        locale = private_locale(opened_by)
        super().__init__(title=t(locale, messages.REFERENCE_DIALOG_TITLE), timeout=600, custom_id=custom_id)
        self.images = images
        if images.count == 1:
            label = t(locale, "Prompt (1 reference image)")
        else:
            label = t(locale, "Prompt ({count} reference images)", count=images.count)
        self.prompt: discord.ui.TextInput[ReferenceModal] = discord.ui.TextInput(
            label=label, style=discord.TextStyle.paragraph, max_length=MODAL_PROMPT_MAX
        )
        self.aspect: discord.ui.TextInput[ReferenceModal] = discord.ui.TextInput(
            label=t(locale, "Aspect ratio ({ratios})", ratios=", ".join(ASPECT_RATIOS)),
            required=False,
            max_length=5,
        )
        self.add_item(self.prompt)
        self.add_item(self.aspect)

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        ratio = self.aspect.value.strip() or None
        if ratio is not None and ratio not in ASPECT_RATIOS:
            # A text: the member reads it in their language, the usage log in English.
            text = msg(
                "The aspect ratio must be one of {ratios}, or left blank.", ratios=", ".join(ASPECT_RATIOS)
            )
            await refuse_bad_input(
                interaction, text, prompt=self.prompt.value, aspect_ratio=ratio, ref_count=self.images.count
            )
            return
        attachments = self.images.attachments
        urls = await fresh_links(interaction.client, [a.url for a in attachments])
        refreshed = tuple(dataclasses.replace(a, url=u) for a, u in zip(attachments, urls, strict=True))
        # The member's default style and aspect ratio apply, as with /imagine.
        draft = Draft(self.prompt.value, ratio, refreshed, extra_urls=self.images.embed_urls)
        await start_request(interaction, draft)
