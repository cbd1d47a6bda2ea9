"""Videos the image service makes: read an MP4's shape and length, and make one fit an upload limit.

PyAV (FFmpeg, shipped inside its wheels) does the work. Every function here is blocking CPU work, meant
to run on the media executor, never on the event loop. A video is only ever posted as a file: result
links expire, so a clip that cannot be made to fit is refused with a reason, never shown as a link.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from fractions import Fraction

import av

log = logging.getLogger(__name__)

MP4_TYPE = "video/mp4"
# Re-encoding tries these shorter sides in turn, keeping the shape, until the clip fits.
FIT_SHORT_SIDES = (720, 480, 360, 240)
# Of the byte budget, this much goes to the picture; the rest is the container's overhead.
CONTAINER_SHARE = 0.92


class VideoError(ValueError):
    """Bytes that are not a playable video; the message is for the operator's log."""


@dataclass(frozen=True)
class VideoInfo:
    duration: float  # seconds
    width: int
    height: int
    codec: str
    frames: int


def looks_like_mp4(data: bytes) -> bool:
    """An ISO base media file starts with a box of type `ftyp` (after its 4-byte size)."""
    return len(data) >= 12 and data[4:8] == b"ftyp"


def probe(data: bytes) -> VideoInfo:
    """The clip's length and size, read by decoding its headers; VideoError if it is not a video."""
    if not looks_like_mp4(data):
        raise VideoError("not an MP4 file (no ftyp box)")
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.video:
                raise VideoError("the file has no video stream")
            stream = container.streams.video[0]
            duration = _duration(container, stream)
            return VideoInfo(
                duration=duration,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                codec=stream.codec_context.name,
                frames=stream.frames,
            )
    except av.FFmpegError as error:
        raise VideoError(f"the video could not be read ({error})") from None


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return 0.0


def fit_to_limit(data: bytes, limit_bytes: int) -> bytes | None:
    """The clip itself when it fits, else re-encoded (H.264, smaller bit rate, then smaller frames) to
    fit `limit_bytes`; None when no attempt fits (the caller tells the member what to try instead)."""
    if len(data) <= limit_bytes:
        return data
    info = probe(data)
    if info.duration <= 0:
        return None
    bits_per_second = int(limit_bytes * 8 * CONTAINER_SHARE / info.duration)
    for short in FIT_SHORT_SIDES:
        if short > min(info.width, info.height):
            continue
        try:
            encoded = _reencode(data, info, short, bits_per_second)
        except av.FFmpegError as error:
            log.warning("re-encoding a video at %sp failed: %s", short, error)
            return None
        if len(encoded) <= limit_bytes:
            return encoded
        bits_per_second = int(bits_per_second * 0.8)
    return None


def _reencode(data: bytes, info: VideoInfo, short: int, bits_per_second: int) -> bytes:
    scale = short / min(info.width, info.height)
    width, height = _even(info.width * scale), _even(info.height * scale)
    out = io.BytesIO()
    with av.open(io.BytesIO(data), "r") as source, av.open(out, "w", format="mp4") as target:
        video_in = source.streams.video[0]
        rate = video_in.average_rate or Fraction(24)
        video_out = target.add_stream("libx264", rate=rate)
        video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
        video_out.bit_rate = max(bits_per_second, 50_000)
        video_out.options = {"preset": "veryfast"}
        tick = Fraction(1, 1) / rate
        for index, frame in enumerate(source.decode(video_in)):
            resized = frame.reformat(width=width, height=height, format="yuv420p")
            # Frames are numbered anew at the clip's frame rate, so the copy lasts as long as the source.
            resized.pts, resized.time_base = index, tick
            for packet in video_out.encode(resized):
                target.mux(packet)
        for packet in video_out.encode():
            target.mux(packet)
    return out.getvalue()


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
