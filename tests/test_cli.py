"""The terminal command: the same API client and job runner, writing the image to a file."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

from PIL import Image

from bot.ops.config import Settings, load_settings
from bot.ops.terminal_imagine import run_imagine
from sandbox.server import Sandbox
from tests.bot_harness import World
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[1]


def cli_env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return {
        "MOUNTSEA_API_KEY": "sandbox-key",
        "MOUNTSEA_BASE_URL": sandbox.base_url or "",
        "DATABASE_PATH": str(tmp_path / "cli.db"),
        "POLL_MIN_INTERVAL": "0.05",
        "POLL_FIRST_DELAY": "0.1",
    }


def cli_settings(sandbox: Sandbox, tmp_path: Path) -> Settings:
    return load_settings(cli_env(sandbox, tmp_path), None, require_token=False)


async def start_cli(
    sandbox: Sandbox, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """`python -m bot imagine ...` as a real process, its temporary folder inside the test's; `env`
    adds or overrides settings."""
    temporary = tmp_path / "tmp"
    temporary.mkdir(exist_ok=True)
    settings = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOUNTSEA_")}
    env |= cli_env(sandbox, tmp_path) | {"PYTHONPATH": str(ROOT), "TMPDIR": str(temporary)} | settings
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "imagine",
        *args,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def submits(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.method == "POST")


async def test_terminal_command_writes_the_sandbox_image(sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "new" / "folder" / "out.png"  # missing folders are created
    process = await start_cli(sandbox, tmp_path, "a quiet harbour", "--aspect", "9:16", "--out", str(out))
    code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    task_id = next(iter(sandbox.tasks))
    assert out.read_bytes() == sandbox.image_bytes(task_id)
    with Image.open(out) as image:
        assert image.size[1] > image.size[0]  # 9:16 is tall
    assert stdout == f"{out}\n"  # the path on stdout, progress on stderr
    assert "done in" in stderr and "submitted" in stderr
    assert [p.name for p in out.parent.iterdir()] == ["out.png"]  # no partial file left behind


async def test_terminal_command_reports_failure(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.force_next("failed", error_message="nope")
    settings = cli_settings(sandbox, tmp_path)
    stream, stdout = io.StringIO(), io.StringIO()
    code = await run_imagine(settings, "x", None, [], tmp_path / "o.png", stream=stream, stdout=stdout)
    assert code == 1
    assert "nope" in stream.getvalue() and stdout.getvalue() == ""
    assert not (tmp_path / "o.png").exists()
    assert await run_imagine(settings, "   ", None, [], tmp_path / "o.png", stream=stream) == 2


async def test_an_unusable_out_is_refused_before_anything_is_sent(sandbox: Sandbox, tmp_path: Path) -> None:
    process = await start_cli(sandbox, tmp_path, "a cat", "--out", str(tmp_path))
    code, stdout, stderr = await finish(process)
    assert code == 2 and stdout == ""
    assert stderr.strip() == f"--out {tmp_path} is a folder; give a file name, e.g. {tmp_path / 'file'}"

    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    stream = io.StringIO()
    settings = cli_settings(sandbox, tmp_path)
    code = await run_imagine(settings, "a cat", None, [], blocker / "out.png", stream=stream)
    assert code == 2 and "cannot be created" in stream.getvalue()
    assert submits(sandbox) == 0


async def test_references_are_checked_before_anything_is_sent(world: World, tmp_path: Path) -> None:
    fake, sandbox = world.fake, world.sandbox
    gone = fake.make_attachment("gone.png", "image/png")
    fake.expire_url(gone["url"])
    text = fake.make_attachment("notes.png", "image/png", data=b"just some text\n" * 10)
    # MAX_ATTACHMENT_MB is 10 by default: one byte more than that.
    huge = fake.make_attachment("huge.png", "image/png", data=b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024))
    good = fake.make_attachment("fine.png", "image/png")
    refs = [good["url"], gone["url"], text["url"], huge["url"]]
    args = [arg for url in refs for arg in ("--ref", url)]
    process = await start_cli(sandbox, tmp_path, "edit these", *args, "--out", str(tmp_path / "o.png"))
    code, stdout, stderr = await finish(process)
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert lines == [
        f"--ref {gone['url']} could not be downloaded (HTTP 404)",
        f"--ref {text['url']} is not a PNG, JPEG, WebP or GIF image",
        f"--ref {huge['url']} is larger than 10 MB",
    ]
    assert submits(sandbox) == 0


async def test_a_failed_write_saves_the_paid_image_elsewhere_and_exits(world: World, tmp_path: Path) -> None:
    sandbox = world.sandbox
    sandbox.config.duration = 1.5
    reference = world.fake.make_attachment("day.png", "image/png")
    out = tmp_path / "night.png"
    process = await start_cli(
        sandbox, tmp_path, "make it night", "--ref", reference["url"], "--out", str(out)
    )
    await wait_until(lambda: sandbox.task_count, "the command's submit to reach the sandbox", timeout=20)
    out.mkdir()  # the path turns unwritable while the image is being made
    code, stdout, stderr = await finish(process)
    assert code == 1
    [rescued] = [Path(line) for line in stdout.splitlines()]
    assert rescued.parent == tmp_path / "tmp"
    assert rescued.read_bytes() == sandbox.image_bytes(next(iter(sandbox.tasks)))
    [said] = [line for line in stderr.splitlines() if "could not write" in line]
    assert said == (
        f"could not write {out} ({out} is a folder; give a file name, e.g. {out / 'file'});"
        f" the image was saved to {rescued} instead"
    )
    assert "Traceback" not in stderr and "attempt" not in stderr
    [submit] = [r for r in sandbox.requests if r.method == "POST"]
    assert submit.json["images"] == [reference["url"]]
