"""`python -m bot animate`: a video from the terminal into an MP4 file, with /animate's options, checked
before anything is sent, and written under the rules of every operator output."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

from bot.ops.terminal_animate import run_animate
from sandbox.server import Sandbox
from testing.mp4_boxes import read_mp4
from tests.test_cli import ROOT, cli_env, cli_settings, finish


def video_submits(sandbox: Sandbox) -> list[dict[str, object]]:
    return [r.json for r in sandbox.requests if r.method == "POST" and r.path == "/xai/videos"]


async def test_the_command_writes_a_playable_mp4_of_the_asked_length(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    out = tmp_path / "clips" / "waves"  # no extension: .mp4 is added; missing folders are made
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOUNTSEA_")}
    env |= cli_env(sandbox, tmp_path) | {"PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "animate",
        "waves rolling in",
        "--duration",
        "10",
        "--resolution",
        "480P",
        "--aspect",
        "16:9",
        "--out",
        str(out),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    written = out.with_suffix(".mp4")
    assert stdout.strip() == str(written)
    facts = read_mp4(written.read_bytes())
    assert abs(facts.duration - 10) < 0.5 and facts.width > facts.height
    assert video_submits(sandbox) == [
        {
            "prompt": "waves rolling in",
            "model": "grok-imagine-video",
            "duration": 10,
            "aspectRatio": "16:9",
            "resolution": "480P",
        }
    ]


async def animate(sandbox: Sandbox, tmp_path: Path, prompt: str, **options: object) -> tuple[int, str]:
    stream = io.StringIO()
    stdout = io.TextIOWrapper(io.BytesIO(), write_through=True)
    code = await run_animate(
        cli_settings(sandbox, tmp_path),
        prompt,
        stream=stream,
        stdout=stdout,
        **options,  # type: ignore[arg-type]
    )
    return code, stream.getvalue()


async def test_bad_input_is_refused_before_anything_is_sent(sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    cases = [
        ({"out": out}, "x" * 1001, "the limit for videos is 1,000"),
        ({"out": out, "duration": 7}, "waves", "must be one of 6, 10, 15 seconds"),
        ({"out": out, "resolution": "1080P"}, "waves", "must be one of 480P, 720P"),
        ({"out": out, "image": "https://example.com/a.png", "aspect_ratio": "1:1"}, "waves", "image's size"),
        ({"out": tmp_path / "clip.gif"}, "waves", "a video is written as MP4"),
        ({"out": out, "image": str(tmp_path)}, "waves", "--image"),
    ]
    for options, prompt, expected in cases:
        code, said = await animate(sandbox, tmp_path, prompt, **options)
        assert code == 2 and expected in said, (options, said)
    assert video_submits(sandbox) == [] and not out.exists()


async def test_an_existing_file_is_kept_without_force(sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"mine")
    code, said = await animate(sandbox, tmp_path, "waves", out=out)
    assert code == 2 and "--force" in said and out.read_bytes() == b"mine"
    code, said = await animate(sandbox, tmp_path, "waves", out=out, force=True)
    assert code == 0, said
    assert abs(read_mp4(out.read_bytes()).duration - 6) < 0.5


async def test_a_result_that_is_not_a_video_fails_with_the_reason(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.force_next("completed", result={"video_url": f"{sandbox.base_url}/sandbox/nothing-here.mp4"})
    out = tmp_path / "clip.mp4"
    code, said = await animate(sandbox, tmp_path, "waves", out=out)
    assert code == 1 and "its video could not be used" in said
    assert not out.exists()
