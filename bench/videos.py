"""Videos: the ETA members see for a video (learned apart from images), the polls a video takes, and
what delivering a clip costs (fetching it, and re-encoding one that is over the upload limit).

ETA: video tasks of 5-90 s (log-uniform) and image tasks of 5-30 s go through the real runner and the
sandbox together, time scaled by ScaledClock; the video ETA the runner learned (the median of the
latest videos) is compared with the true median duration of those same videos, and the image ETA with
its images': neither may be pulled towards the other kind.

Delivery: a 720P clip (24 frames a second, a busy picture, so it weighs what a real one does) is served
from a local host and fetched by the bot's own fetcher (safe fetching, size cap, the MP4 check), then
re-encoded by `fit_to_limit` on the image pool to half its size, as the Discord sink does when a clip is
over the server's upload limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from PIL import Image

from bench.mix import PairedSandbox, adaptive_schedule_args
from bench.profiles import Profile
from bench.recording_sink import TimingSink
from bot.adapters.image_api import ImageApi
from bot.adapters.result_files import HttpResultFetcher
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.adapters.video import fit_to_limit, probe
from bot.core.clock import ScaledClock
from bot.core.executors import IMAGES
from bot.core.models import ImageRequest, Origin
from bot.core.runner import RunnerConfig
from bot.core.schedule import PollSchedule
from bot.ops.runner_wiring import build_runner
from sandbox.clips import encode_mp4
from sandbox.server import SandboxConfig, log_uniform

SOURCE = "bench"
VIDEO_LOW, VIDEO_HIGH = 5.0, 90.0
IMAGE_LOW, IMAGE_HIGH = 5.0, 30.0
GRAIN, GRAIN_FRAMES = 13, 7


@dataclass(frozen=True)
class Size:
    videos: int  # video jobs (as many image jobs run beside them)
    time_factor: float
    clip_seconds: int
    clip_width: int
    clip_height: int
    clip_fps: int


SIZES = {
    "full": Size(videos=60, time_factor=10.0, clip_seconds=15, clip_width=1280, clip_height=720, clip_fps=24),
    "quick": Size(
        videos=30, time_factor=20.0, clip_seconds=10, clip_width=1280, clip_height=720, clip_fps=24
    ),
    "smoke": Size(videos=5, time_factor=90.0, clip_seconds=1, clip_width=320, clip_height=180, clip_fps=12),
}


@dataclass(frozen=True)
class VideoResult:
    eta: float | None
    true_median: float  # of the jobs the ETA learned from
    image_eta: float | None
    image_true_median: float
    polls_per_video: float
    videos: int
    clip_bytes: int
    fetch_ms: float
    reencoded_bytes: int | None
    reencode_s: float
    clip_seconds: float

    def figures(self) -> dict[str, float | None]:
        error = None if self.eta is None else abs(self.eta - self.true_median) / self.true_median * 100
        image_error = (
            None
            if self.image_eta is None
            else abs(self.image_eta - self.image_true_median) / self.image_true_median * 100
        )
        return {
            "video_eta_error_pct": error,
            "video_eta_s": self.eta,
            "video_true_median_s": self.true_median,
            "video_image_eta_error_pct": image_error,
            "video_polls_per_job": self.polls_per_video,
            "video_jobs": float(self.videos),
            "video_clip_mb": self.clip_bytes / 1_000_000,
            "video_clip_seconds": self.clip_seconds,
            "video_fetch_ms": self.fetch_ms,
            "video_reencode_s": self.reencode_s,
            "video_reencoded_mb": None if self.reencoded_bytes is None else self.reencoded_bytes / 1_000_000,
        }


async def run_video(profile: Profile) -> VideoResult:
    size = SIZES.get(profile.name, SIZES["quick"])
    eta, true_median, image_eta, image_median, polls = await _learned_eta(profile, size)
    clip = await asyncio.to_thread(make_clip, size)
    fetch_ms, fetched = await _fetch(clip)
    started = time.perf_counter()
    fitted = await IMAGES.run(fit_to_limit, fetched, len(fetched) // 2)
    reencode_s = time.perf_counter() - started
    return VideoResult(
        eta=eta,
        true_median=true_median,
        image_eta=image_eta,
        image_true_median=image_median,
        polls_per_video=polls,
        videos=size.videos,
        clip_bytes=len(clip),
        fetch_ms=fetch_ms,
        reencoded_bytes=None if fitted is None else len(fitted),
        reencode_s=reencode_s,
        clip_seconds=probe(clip).duration,
    )


# -- the learned ETA -----------------------------------------------------------------------------------------


async def _learned_eta(
    profile: Profile, size: Size
) -> tuple[float | None, float, float | None, float, float]:
    rng = random.Random(profile.seed)
    video_draw, image_draw = log_uniform(VIDEO_LOW, VIDEO_HIGH), log_uniform(IMAGE_LOW, IMAGE_HIGH)
    videos = {f"video {n}": video_draw(rng) for n in range(size.videos)}
    images = {f"image {n}": image_draw(rng) for n in range(size.videos)}
    clock = ScaledClock(size.time_factor)
    sandbox = PairedSandbox(videos | images, SandboxConfig(clock=clock.time, seed=profile.seed))
    base_url = await sandbox.start()
    sink = TimingSink()
    try:
        with tempfile.TemporaryDirectory() as folder:
            async with open_session(FetchPolicy.build(base_url)) as session:
                store = await Store.open(Path(folder) / "bench.db")
                api = ImageApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=30.0)
                runner = build_runner(
                    store,
                    api,
                    session,
                    sink,
                    RunnerConfig(),
                    schedule=PollSchedule(*adaptive_schedule_args()),
                    source=SOURCE,
                    clock=clock,
                )
                try:
                    await runner.start()
                    origin = Origin(source=SOURCE)
                    # Arrivals spread over the longest video, so both kinds are in flight together.
                    gap = clock.real_seconds(VIDEO_HIGH) / max(size.videos, 1)
                    for video, image in zip(videos, images, strict=True):
                        await runner.enqueue(ImageRequest(video, media="video", video_seconds=6), origin)
                        await runner.enqueue(ImageRequest(image), origin)
                        await asyncio.sleep(gap)
                    await sink.wait_for(2 * size.videos, timeout=clock.real_seconds(VIDEO_HIGH) * 4 + 60)
                    eta, image_eta = runner.typical_duration("video"), runner.typical_duration("text")
                finally:
                    await runner.stop()
                    await store.close()
    finally:
        await sandbox.stop()
    video_polls = [a.poll_count for a in sink.arrivals.values() if a.prompt.startswith("video")]
    return (
        eta,
        _learned_from(sink, videos),
        image_eta,
        _learned_from(sink, images),
        statistics.mean(video_polls),
    )


def _learned_from(sink: TimingSink, planned: dict[str, float]) -> float:
    """The true median duration of the jobs an ETA is the median of: the latest `eta_window` of the kind
    to finish (in a finite run the latest to finish are the longer ones, so comparing with the median of
    every job would blame the ETA for the run's shape)."""
    done = sorted(
        (a for a in sink.arrivals.values() if a.prompt in planned and a.finished_at is not None),
        key=lambda a: a.finished_at or 0.0,
    )
    latest = done[-RunnerConfig().eta_window :]
    return statistics.median(planned[a.prompt] for a in latest)


# -- fetching and re-encoding a clip ------------------------------------------------------------------------


def make_clip(size: Size) -> bytes:
    """A clip of the size's length and frame size: a moving gradient under fine noise, so that it weighs
    about what a real 720P clip does (the sandbox's own clips are tiny on purpose)."""
    width, height = size.clip_width, size.clip_height
    base = Image.linear_gradient("L").resize((width, height))
    # Fine grain, drawn once and cycled: a clean picture would shrink to almost nothing, while this
    # grain weighs about what a generated clip does (some 5 MB for 15 s at 720P).
    grain = [Image.effect_noise((width, height), GRAIN) for _ in range(GRAIN_FRAMES)]

    def picture(index: int) -> Image.Image:
        shifted = base.transform(base.size, Image.Transform.AFFINE, (1, 0, -index * 4, 0, 1, 0))
        return Image.merge("RGB", (shifted, grain[index % GRAIN_FRAMES], base))

    pictures = (picture(index) for index in range(size.clip_seconds * size.clip_fps))
    return encode_mp4(pictures, width, height, size.clip_fps, {"preset": "veryfast", "crf": "26"})


@contextlib.asynccontextmanager
async def _clip_host(clip: bytes) -> AsyncIterator[str]:
    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=clip, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/clip.mp4", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _fetch(clip: bytes) -> tuple[float, bytes]:
    """Milliseconds to fetch the clip through the bot's fetcher (best of three), and its bytes."""
    async with _clip_host(clip) as origin, open_session(FetchPolicy.build(None, [origin])) as session:
        fetcher = HttpResultFetcher(session, max_bytes=50 * 1024 * 1024, timeout=60.0, max_pixels=16_000_000)
        best, data = float("inf"), b""
        for _ in range(3):
            started = time.perf_counter()
            video = await fetcher.fetch_video(f"http://{origin}/clip.mp4")
            best = min(best, (time.perf_counter() - started) * 1000)
            assert video.data is not None
            data = video.data
    return best, data
