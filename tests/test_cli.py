"""The terminal command: the same API client and job runner, writing the image to a file."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

from PIL import Image

from bot.cli import run_imagine
from bot.config import load_settings
from bot.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]


async def test_terminal_command_writes_the_sandbox_image(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {
        "MOUNTSEA_API_KEY": "sandbox-key",
        "MOUNTSEA_BASE_URL": sandbox.base_url or "",
        "DATABASE_PATH": str(tmp_path / "cli.db"),
        "POLL_MIN_INTERVAL": "0.05",
        "POLL_FIRST_DELAY": "0.1",
        "PYTHONPATH": str(ROOT),
    }
    out = tmp_path / "out.png"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "imagine",
        "a quiet harbour",
        "--aspect",
        "9:16",
        "--out",
        str(out),
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MOUNTSEA_")}, **env},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    task_id = next(iter(sandbox.tasks))
    assert out.read_bytes() == sandbox.image_bytes(task_id)
    with Image.open(out) as image:
        assert image.size[1] > image.size[0]  # 9:16 is tall
    assert b"done in" in stderr


async def test_terminal_command_reports_failure(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.force_next("failed", error_message="nope")
    settings = load_settings(
        {
            "MOUNTSEA_API_KEY": "sandbox-key",
            "MOUNTSEA_BASE_URL": sandbox.base_url or "",
            "DATABASE_PATH": str(tmp_path / "cli.db"),
            "POLL_MIN_INTERVAL": "0.05",
            "POLL_FIRST_DELAY": "0.1",
        },
        None,
        require_token=False,
    )
    stream = io.StringIO()
    code = await run_imagine(settings, "x", None, [], tmp_path / "o.png", stream=stream)
    assert code == 1
    assert "nope" in stream.getvalue()
    assert not (tmp_path / "o.png").exists()
    assert await run_imagine(settings, "   ", None, [], tmp_path / "o.png", stream=stream) == 2
