"""Checks on a video request (/animate, the Animate dialog, the terminal) before anything is billed:
plain data in, a video `ImageRequest` or a refusal (`InputRefused`) out."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.models import ImageRequest, with_style
from bot.core.policy.styles import Style
from bot.core.policy.validation import AttachmentInfo, InputRefused, validate_request
from bot.core.texts import msg
from bot.core.video_contract import (
    DEFAULT_VIDEO_DURATION,
    DEFAULT_VIDEO_RESOLUTION,
    MAX_MOTION_PROMPT_CHARS,
    VIDEO_ASPECT_RATIOS,
    VIDEO_DURATIONS,
    VIDEO_RESOLUTIONS,
)


def parse_duration(value: str | int | None) -> int:
    """A duration as typed (a dialog's text, a command's option): one of VIDEO_DURATIONS, else refused."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_VIDEO_DURATION
    text = str(value).strip().lower().removesuffix("s").strip()
    if text.isdigit() and int(text) in VIDEO_DURATIONS:
        return int(text)
    raise InputRefused(
        msg(
            "The duration must be one of {durations} seconds.",
            durations=", ".join(str(d) for d in VIDEO_DURATIONS),
        )
    )


def validate_video_request(
    prompt: str | None,
    *,
    duration: str | int | None = None,
    resolution: str | None = None,
    aspect_ratio: str | None = None,
    attachments: Sequence[AttachmentInfo] = (),
    image_url: str | None = None,
    max_attachment_bytes: int,
    style: Style | None = None,
    source_job_id: int | None = None,
    source_image_index: int | None = None,
) -> ImageRequest:
    """A video from text, or from one image (an attachment checked like /imagine's, or `image_url`, an
    image the bot already knows). With an image the video takes the image's size, so a resolution or
    aspect ratio is refused rather than silently ignored."""
    text = (prompt or "").strip()
    if not text:
        raise InputRefused(msg("Your motion prompt is empty. Describe how the picture should move."))
    whole = len(with_style(text, style.text if style else None))
    if whole > MAX_MOTION_PROMPT_CHARS:
        raise InputRefused(
            msg(
                "Your motion prompt is {length} characters long; the limit for videos is {limit}. "
                "Please shorten it.",
                length=f"{whole:,}",
                limit=f"{MAX_MOTION_PROMPT_CHARS:,}",
            )
        )
    seconds = parse_duration(duration)
    if len(attachments) + (1 if image_url else 0) > 1:
        raise InputRefused(msg("A video can be made from one image at most."))
    from_image = bool(attachments) or image_url is not None
    if from_image and (resolution or aspect_ratio):
        raise InputRefused(
            msg(
                "A video made from an image takes the image's size: leave the resolution and the aspect "
                "ratio out."
            )
        )
    if resolution is not None and resolution.upper() not in VIDEO_RESOLUTIONS:
        raise InputRefused(
            msg("The resolution must be one of {resolutions}.", resolutions=", ".join(VIDEO_RESOLUTIONS))
        )
    if aspect_ratio is not None and aspect_ratio not in VIDEO_ASPECT_RATIOS:
        raise InputRefused(
            msg("The aspect ratio must be one of {ratios}.", ratios=", ".join(VIDEO_ASPECT_RATIOS))
        )
    references: tuple[str, ...] = ()
    if attachments:
        # The same checks as /imagine's reference images: type (PNG, JPEG, WebP, GIF), size, link.
        references = validate_request(
            text, None, attachments, max_attachment_bytes=max_attachment_bytes
        ).reference_urls
    elif image_url is not None:
        references = (image_url,)
    return ImageRequest(
        prompt=text,
        aspect_ratio=None if from_image else aspect_ratio,
        reference_urls=references,
        style=style.name if style else None,
        style_text=style.text if style else None,
        media="video",
        video_seconds=seconds,
        video_resolution=None if from_image else (resolution or DEFAULT_VIDEO_RESOLUTION).upper(),
        source_job_id=source_job_id,
        source_image_index=source_image_index,
    )
