"""The sandbox's videos: small, valid H.264 MP4 files of the requested length and shape.

Real bytes, so that the terminal command, the tests and the benchmarks handle what the real service
sends: a clip as long as asked, with the shape of its aspect ratio (or of the reference image), each frame
showing the motion prompt over a colour that moves, so a person looking at one can tell it is alive.
Frames are few per second and the picture is simple, so a clip is made in a fraction of a second.
"""

from __future__ import annotations

import io

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
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FRAMES_PER_SECOND)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frames = duration * FRAMES_PER_SECOND
        for index in range(frames):
            image = _frame(prompt, index, frames, w, h)
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]  # PyAV leaves it untyped
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
