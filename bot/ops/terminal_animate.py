"""`python -m bot animate`: a short video from the terminal, into an MP4 file, with the options of
/animate. Checked before anything is sent (a video is billed), run by the same runner as `imagine`
(bot/ops/terminal_imagine.py) and written under the same output rules (bot/ops/output_file.py)."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from bot.core.clock import Clock
from bot.core.policy.validation import InputRefused
from bot.core.policy.video_request import validate_video_request
from bot.ops.config import Settings
from bot.ops.output_file import database_files, writable_problem
from bot.ops.terminal_imagine import STDOUT, Output, reference_refusal, run_job

VIDEO_SUFFIX = ".mp4"
OUT_HELP = (
    "where to write the video (default: animate-YYYYMMDD-HHMMSS.mp4 in this folder); a name without an"
    " extension gets .mp4, any other extension is refused. An existing file is kept unless --force; a"
    " symlink is written through to its file; - writes the video to standard output"
)


def default_out(now: float | None = None) -> Path:
    return Path(time.strftime("animate-%Y%m%d-%H%M%S.mp4", time.localtime(now)))


@dataclass
class VideoOutput(Output):
    """An MP4 file: written as it came, never converted."""

    @property
    def format(self) -> str | None:
        return None

    def problem(self, count: int = 1) -> str | None:
        """Why the video could not be written as asked, before anything is sent (one video: `count`
        is always 1). Blocking."""
        if self.path is None:
            return None
        if self.path.suffix and self.path.suffix.lower() != VIDEO_SUFFIX:
            return f"--out {self.path}: a video is written as MP4; name it {self.path.stem}{VIDEO_SUFFIX}"
        special = self.path.exists() and not self.path.is_file()
        first = self.path if special else self.target(0, "mp4")
        problem = writable_problem(first, protected=self.protected, overwrite=self.force)
        return f"--out {problem}" if problem else None


async def run_animate(
    settings: Settings,
    prompt: str,
    *,
    image: str | None = None,
    duration: int | None = None,
    resolution: str | None = None,
    aspect_ratio: str | None = None,
    out: Path | None = None,
    force: bool = False,
    stream: TextIO = sys.stderr,
    stdout: TextIO = sys.stdout,
    clock: Clock | None = None,
) -> int:
    """Exit code: 0 with the video written, 1 when the job failed or the API could not be reached, 2 on
    bad input (nothing was sent)."""
    if image is not None and (refused := await asyncio.to_thread(reference_refusal, image)) is not None:
        print(refused.replace("--ref", "--image"), file=stream)
        return 2
    try:
        request = validate_video_request(
            prompt,
            duration=duration,
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            image_url=image,
            max_attachment_bytes=settings.max_attachment_bytes,
        )
    except InputRefused as refusal:
        print(str(refusal), file=stream)
        return 2
    image_out: BinaryIO | None = None
    output: Output
    if out is not None and str(out) == STDOUT:
        image_out = getattr(stdout, "buffer", None)
        if image_out is None or stdout.isatty():
            print(
                "--out -: standard output is a terminal; redirect it (> clip.mp4) or name a file", file=stream
            )
            return 2
        output = VideoOutput(None)
    else:
        protected = database_files(None if settings.database_url else settings.database_path)
        output = VideoOutput(out or default_out(), force=force, protected=protected)
    problem = await asyncio.to_thread(output.problem)
    if problem is not None:
        print(problem, file=stream)
        return 2
    return await run_job(settings, request, output, image_out, stream=stream, stdout=stdout, clock=clock)
