"""The sandbox's `POST /xai/videos`: the gateway's video route as documented (docs/API.md), with the
same strictness as its image route, so the bot's video requests are checked against the contract.

A video task is followed through the same `GET /xai/tasks`; its result links to a real MP4
(sandbox/clips.py) of the asked length, whose shape is the asked aspect ratio, or the reference image's.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import aiohttp
from PIL import Image, UnidentifiedImageError

from bot.core.video_contract import (
    DEFAULT_VIDEO_DURATION,
    DEFAULT_VIDEO_RESOLUTION,
    MAX_MOTION_PROMPT_CHARS,
    MAX_VIDEO_REFERENCES,
    VIDEO_ASPECT_RATIOS,
    VIDEO_DURATIONS,
    VIDEO_MODEL,
    VIDEO_RESOLUTIONS,
    frame_size,
)

DEFAULT_VIDEO_ASPECT_RATIO = "16:9"


class VideoRequestError(ValueError):
    """What a 400 answer to a video submit says."""


@dataclass(frozen=True)
class VideoSpec:
    """What a video task will make: its length and its frame size."""

    duration: int
    width: int
    height: int


@dataclass(frozen=True)
class VideoSubmission:
    prompt: str
    duration: int
    aspect_ratio: str
    resolution: str
    reference_images: tuple[str, ...]


def validate_video_submission(body: object) -> VideoSubmission:
    """The documented field rules; raises VideoRequestError with the message a 400 carries."""
    if not isinstance(body, dict):
        raise VideoRequestError("Request body must be a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise VideoRequestError("prompt is required and must be a non-blank string")
    if len(prompt) > MAX_MOTION_PROMPT_CHARS:
        raise VideoRequestError(
            f"prompt must be at most {MAX_MOTION_PROMPT_CHARS} characters, got {len(prompt)}"
        )
    if body.get("model") != VIDEO_MODEL:
        raise VideoRequestError(f"model must be {VIDEO_MODEL}")
    duration = body.get("duration", DEFAULT_VIDEO_DURATION)
    if isinstance(duration, bool) or duration not in VIDEO_DURATIONS:
        raise VideoRequestError(f"duration must be one of: {', '.join(map(str, VIDEO_DURATIONS))}")
    ratio = body.get("aspectRatio", DEFAULT_VIDEO_ASPECT_RATIO)
    if ratio not in VIDEO_ASPECT_RATIOS:
        raise VideoRequestError(f"aspectRatio must be one of: {', '.join(VIDEO_ASPECT_RATIOS)}")
    resolution = body.get("resolution", DEFAULT_VIDEO_RESOLUTION)
    if resolution not in VIDEO_RESOLUTIONS:
        raise VideoRequestError(f"resolution must be one of: {', '.join(VIDEO_RESOLUTIONS)}")
    images = body.get("images", [])
    if not isinstance(images, list) or not all(
        isinstance(u, str) and u.startswith(("http://", "https://")) for u in images
    ):
        raise VideoRequestError("images must be an array of http(s) URLs")
    if len(images) > MAX_VIDEO_REFERENCES:
        raise VideoRequestError(f"images must hold at most {MAX_VIDEO_REFERENCES} URL, got {len(images)}")
    return VideoSubmission(prompt, int(duration), str(ratio), str(resolution), tuple(images))


async def video_spec(submission: VideoSubmission, http: aiohttp.ClientSession | None) -> VideoSpec:
    """The clip's frame size: the aspect ratio's at the resolution, or, from an image, the image's own
    shape (the documented rule: with a reference, aspectRatio and resolution are ignored)."""
    width, height = frame_size(submission.aspect_ratio, submission.resolution)
    if submission.reference_images and http is not None:
        shape = await _image_size(http, submission.reference_images[0])
        if shape is not None:
            width, height = _even(shape[0]), _even(shape[1])
    return VideoSpec(submission.duration, width, height)


async def _image_size(http: aiohttp.ClientSession, url: str) -> tuple[int, int] | None:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            data = await response.content.read(20 * 1024 * 1024)
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (aiohttp.ClientError, TimeoutError, UnidentifiedImageError, OSError):
        return None


def video_result(url: str, shape: str) -> dict[str, Any]:
    """The finished task's `result`, in the configured shape: its form is undocumented, so the bot must
    find the link whatever the shape."""
    if shape == "objects":
        return {"videos": [{"url": url}]}
    if shape == "data":
        return {"data": [{"url": url}]}
    if shape == "nested":
        return {"output": {"result": {"video_url": url}}}
    return {"video_url": url}


def _even(value: int) -> int:
    return max(2, value - value % 2)
