"""Checks on a request before anything is sent anywhere. Plain data in, `ImageRequest` or a refusal out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.api import ASPECT_RATIOS, MAX_PROMPT_CHARS, MAX_REFERENCE_IMAGES
from bot.delivery import ALLOWED_IMAGE_TYPES
from bot.messages import human_bytes, safe_name
from bot.models import ImageRequest, with_style
from bot.styles import Style


class InputRefused(Exception):
    """The request is refused before any network call; the text is shown to the member."""


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
        raise InputRefused("Your prompt is empty. Describe the image you want, e.g. `a lighthouse at dusk`.")
    whole = len(with_style(text, style.text if style else None))
    if whole > MAX_PROMPT_CHARS:
        if style is not None:
            raise InputRefused(
                f"Your prompt with the style `{safe_name(style.name)}` is {whole:,} characters long; "
                f"the limit is {MAX_PROMPT_CHARS:,}. Please shorten your prompt or pick another style."
            )
        raise InputRefused(
            f"Your prompt is {len(text):,} characters long; the limit is {MAX_PROMPT_CHARS:,}. "
            "Please shorten it."
        )
    if "\x00" in text:
        raise InputRefused("Your prompt contains a character the image service cannot take (a null byte).")
    if aspect_ratio is not None and aspect_ratio not in ASPECT_RATIOS:
        raise InputRefused(f"The aspect ratio must be one of {', '.join(ASPECT_RATIOS)}.")
    if len(attachments) > MAX_REFERENCE_IMAGES:
        raise InputRefused(f"At most {MAX_REFERENCE_IMAGES} reference images can be used at once.")
    for attachment in attachments:
        kind = (attachment.content_type or "").split(";", 1)[0].strip().lower()
        name = safe_name(attachment.filename)
        if kind not in ALLOWED_IMAGE_TYPES:
            shown = kind or "an unknown type"
            raise InputRefused(
                f"`{name}` is not a supported image ({shown}). "
                "Reference images must be PNG, JPEG, WebP or GIF."
            )
        if attachment.size > max_attachment_bytes:
            raise InputRefused(
                f"`{name}` is {human_bytes(attachment.size)}; reference images may be at most "
                f"{human_bytes(max_attachment_bytes)}."
            )
        if not attachment.url.startswith(("https://", "http://")):
            raise InputRefused(f"`{name}` has no usable link. Please upload it again.")
    return ImageRequest(
        prompt=text,
        aspect_ratio=aspect_ratio,
        reference_urls=tuple(a.url for a in attachments),
        style=style.name if style else None,
        style_text=style.text if style else None,
    )
