"""What the gateway's video route accepts (`POST /xai/videos`, docs/API.md) and what a video costs.

Kept in the core so that the commands, the terminal and the web pages check a request the same way
before anything is billed, and so that the price of a clip is computed in one place.
"""

from __future__ import annotations

import math

VIDEO_MODEL = "grok-imagine-video"
MAX_MOTION_PROMPT_CHARS = 1000
# The durations every published version of the page accepts, and 15 s, which the rendered page lists.
VIDEO_DURATIONS = (6, 10, 15)
DEFAULT_VIDEO_DURATION = 6
VIDEO_RESOLUTIONS = ("480P", "720P")
DEFAULT_VIDEO_RESOLUTION = "720P"
VIDEO_ASPECT_RATIOS = ("2:3", "3:2", "1:1", "9:16", "16:9")
MAX_VIDEO_REFERENCES = 1  # image to video: one reference image, whose size then decides the video's

# A server prices a video in images per second of video (`/imagine-admin cost video`): 0.5 by default,
# so a 6 s clip costs 3 images, 10 s 5 and 15 s 8 (rounded up: a clip never costs less than its share).
DEFAULT_IMAGES_PER_VIDEO_SECOND = 0.5


def video_cost(duration_seconds: int, images_per_second: float = DEFAULT_IMAGES_PER_VIDEO_SECOND) -> int:
    """The images a clip counts as against quotas and credits; at least one."""
    # round() first: 0.1 * 30 is 3.0000000000000004 in binary, which must not cost 4.
    return max(1, math.ceil(round(duration_seconds * images_per_second, 9)))


def frame_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Width and height of a video of this shape: the short side is 480 or 720 pixels, both even."""
    short = 480 if resolution.upper() == "480P" else 720
    wide, tall = (int(x) for x in aspect_ratio.split(":"))
    if wide >= tall:
        return _even(short * wide / tall), short
    return short, _even(short * tall / wide)


def _even(value: float) -> int:
    return round(value / 2) * 2
