"""The sandbox's videos: small, valid H.264 MP4 files of the requested length and shape.

Real bytes, so that the terminal command, the tests and the benchmarks handle what the real service
sends: a clip as long as asked, with the shape of its aspect ratio (or of the reference image), each frame
showing the motion prompt over a colour that moves, so a person looking at one can tell it is alive.
Frames are few per second and the picture is simple, so a clip is made in a fraction of a second.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import av
from PIL import Image, ImageDraw

from bot.core.video_contract import frame_size

FRAMES_PER_SECOND = 4
# The sandbox draws at a third of the real size: the file's shape is what tests check, not its pixels.
SCALE_DOWN = 3


def make_video(prompt: str, duration: int, width: int, height: int, *, scale_down: int = SCALE_DOWN) -> bytes:
    """An MP4 of `duration` seconds whose frames have the shape of width by height (scaled down)."""
    w = max(16, (width // scale_down) // 2 * 2)
    h = max(16, (height // scale_down) // 2 * 2)
    frames = duration * FRAMES_PER_SECOND
    pictures = (_frame(prompt, index, frames, w, h) for index in range(frames))
    return encode_mp4(pictures, w, h, FRAMES_PER_SECOND, {"preset": "ultrafast"})


def encode_mp4(
    pictures: Iterable[Image.Image], width: int, height: int, fps: int, options: dict[str, object]
) -> bytes:
    """The pictures (each width by height) as an H.264 MP4 at `fps` frames a second; `options` are
    libx264's (preset, crf). The benchmarks make their heavier clips with it too."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options
        for picture in pictures:
            frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]  # PyAV leaves it untyped
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def make_video_for(prompt: str, duration: int, aspect_ratio: str, resolution: str) -> bytes:
    width, height = frame_size(aspect_ratio, resolution)
    return make_video(prompt, duration, width, height)


def _frame(prompt: str, index: int, frames: int, width: int, height: int) -> Image.Image:
    phase = index / max(frames - 1, 1)
    colour = (int(40 + 180 * phase), 90, int(200 - 150 * phase))
    image = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(image)
    x = int((width - 12) * phase)
    draw.rectangle((x, height // 2 - 6, x + 12, height // 2 + 6), fill=(255, 255, 255))
    draw.text((4, 4), prompt[:40], fill=(255, 255, 255))
    return image
