"""Checks on a request before anything is sent anywhere. Plain data in, `ImageRequest` or a refusal out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.image_contract import ALLOWED_IMAGE_TYPES, ASPECT_RATIOS, MAX_PROMPT_CHARS, MAX_REFERENCE_IMAGES
from bot.core.messages import human_bytes, safe_name
from bot.core.models import ImageRequest, with_style
from bot.core.policy.styles import Style
from bot.core.texts import Text, msg


class InputRefused(Exception):
    """The request is refused before any network call; `text` is shown to the member in their language
    (`str()` of it is the English, for logs)."""

    def __init__(self, text: Text) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class AttachmentInfo:
    """What Discord tells us about an attachment without downloading it."""

    filename: str
    content_type: str | None
    size: int
    url: str


def validate_request(
    prompt: str | None,
    aspect_ratio: str | None,
    attachments: Sequence[AttachmentInfo],
    *,
    max_attachment_bytes: int,
    style: Style | None = None,
) -> ImageRequest:
    """A server style's text is added to the prompt when it is sent: the limit applies to the whole."""
    text = (prompt or "").strip()
    if not text:
        raise InputRefused(
            msg("Your prompt is empty. Describe the image you want, e.g. `a lighthouse at dusk`.")
        )
    whole = len(with_style(text, style.text if style else None))
    if whole > MAX_PROMPT_CHARS:
        if style is not None:
            raise InputRefused(
                msg(
                    "Your prompt with the style {style} is {length} characters long; the limit is {limit}. "
                    "Please shorten your prompt or pick another style.",
                    style=f"`{safe_name(style.name)}`",
                    length=f"{whole:,}",
                    limit=f"{MAX_PROMPT_CHARS:,}",
                )
            )
        raise InputRefused(
            msg(
                "Your prompt is {length} characters long; the limit is {limit}. Please shorten it.",
                length=f"{len(text):,}",
                limit=f"{MAX_PROMPT_CHARS:,}",
            )
        )
    if "\x00" in text:
        raise InputRefused(
            msg("Your prompt contains a character the image service cannot take (a null byte).")
        )
    if aspect_ratio is not None and aspect_ratio not in ASPECT_RATIOS:
        raise InputRefused(msg("The aspect ratio must be one of {ratios}.", ratios=", ".join(ASPECT_RATIOS)))
    if len(attachments) > MAX_REFERENCE_IMAGES:
        raise InputRefused(
            msg("At most {count} reference images can be used at once.", count=MAX_REFERENCE_IMAGES)
        )
    for attachment in attachments:
        kind = (attachment.content_type or "").split(";", 1)[0].strip().lower()
        name = safe_name(attachment.filename)
        if kind not in ALLOWED_IMAGE_TYPES:
            if kind:
                raise InputRefused(
                    msg(
                        "{name} is not a supported image ({type}). "
                        "Reference images must be PNG, JPEG, WebP or GIF.",
                        name=f"`{name}`",
                        type=kind,
                    )
                )
            raise InputRefused(
                msg(
                    "{name} is not a supported image. Reference images must be PNG, JPEG, WebP or GIF.",
                    name=f"`{name}`",
                )
            )
        if attachment.size > max_attachment_bytes:
            raise InputRefused(
                msg(
                    "{name} is {size}; reference images may be at most {limit}.",
                    name=f"`{name}`",
                    size=human_bytes(attachment.size),
                    limit=human_bytes(max_attachment_bytes),
                )
            )
        if not attachment.url.startswith(("https://", "http://")):
            raise InputRefused(msg("{name} has no usable link. Please upload it again.", name=f"`{name}`"))
    return ImageRequest(
        prompt=text,
        aspect_ratio=aspect_ratio,
        reference_urls=tuple(a.url for a in attachments),
        style=style.name if style else None,
        style_text=style.text if style else None,
    )
