"""Videos as bytes (issue 21): the sandbox makes real MP4 files of the asked length and shape, the bot
reads them and makes a too-large one fit an upload limit; a file that is not a video is refused.
The length and size are checked with a box reader of the tests' own (testing/mp4_boxes.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.adapters.video import VideoError, fit_to_limit, looks_like_mp4, probe
from bot.core.video_contract import VIDEO_DURATIONS, frame_size, video_cost
from sandbox.clips import make_video, make_video_for
from testing.mp4_boxes import read_mp4


@pytest.mark.parametrize("duration", VIDEO_DURATIONS)
def test_the_sandbox_makes_a_playable_mp4_of_the_asked_length(duration: int) -> None:
    data = make_video_for("a lighthouse, waves rolling in", duration, "16:9", "720P")
    facts = read_mp4(data)
    assert facts.brand in {"isom", "mp42", "iso5"} and abs(facts.duration - duration) < 0.5
    assert abs(facts.width / facts.height - 16 / 9) < 0.02
    info = probe(data)  # and FFmpeg agrees: it decodes as H.264 of that length
    assert info.codec == "h264" and abs(info.duration - duration) < 0.5 and info.frames >= duration * 3


@pytest.mark.parametrize(
    ("ratio", "portrait"), [("9:16", True), ("2:3", True), ("1:1", False), ("3:2", False)]
)
def test_the_shape_follows_the_aspect_ratio(ratio: str, portrait: bool) -> None:
    width, height = frame_size(ratio, "480P")
    assert min(width, height) == 480 and width % 2 == 0 and height % 2 == 0
    facts = read_mp4(make_video("x", 6, width, height))
    wide, tall = (int(n) for n in ratio.split(":"))
    assert abs(facts.width / facts.height - wide / tall) < 0.03
    assert (facts.height > facts.width) is portrait


def test_what_is_not_a_video_is_refused() -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    assert not looks_like_mp4(png.getvalue())
    with pytest.raises(VideoError):
        probe(png.getvalue())
    data = make_video("x", 6, 320, 180)
    with pytest.raises(VideoError):
        probe(data[:12] + b"\0" * 64)  # an ftyp header and nothing playable after it


def _noisy_video(seconds: int) -> bytes:
    """Random pixels compress badly: a clip much larger than its length needs."""
    import random

    import av

    rng = random.Random(7)
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"crf": "4", "preset": "ultrafast"}
        for _ in range(seconds * 8):
            image = Image.frombytes("RGB", (640, 360), rng.randbytes(640 * 360 * 3))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def test_a_clip_over_the_upload_limit_is_re_encoded_to_fit_and_keeps_its_length() -> None:
    big = _noisy_video(6)
    limit = len(big) // 4
    fitted = fit_to_limit(big, limit)
    assert fitted is not None and len(fitted) <= limit
    facts = read_mp4(fitted)
    assert abs(facts.duration - 6) < 0.5 and abs(facts.width / facts.height - 16 / 9) < 0.03
    assert fit_to_limit(big, len(big)) is big  # a clip that fits is posted as it came


def test_a_clip_that_cannot_fit_gives_none_not_a_broken_file() -> None:
    assert fit_to_limit(_noisy_video(6), 2_000) is None


def test_a_video_costs_images_at_the_servers_rate_rounded_up() -> None:
    assert [video_cost(d) for d in VIDEO_DURATIONS] == [3, 5, 8]
    assert video_cost(6, 1.0) == 6 and video_cost(10, 0.1) == 1 and video_cost(30, 0.1) == 3
    assert video_cost(6, 0.01) == 1  # never free
