"""`python -m bot imagine` as a terminal user meets it: an API that does not answer is named in
seconds, one that answers 5xx is waited for with progress, `--out` follows the rules of every operator
output (special files refused, symlinks written through, `-` for standard output, the format from the
extension, no silent overwrite), a local `--ref` is refused with the reason, and Ctrl-C says what was
submitted."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from pathlib import Path

import pytest

from bot.ops.terminal_imagine import HEARTBEAT, run_imagine
from sandbox.server import Sandbox, SandboxConfig
from tests.helpers import wait_until
from tests.test_cli import cli_settings, finish, start_cli, submits
from tests.test_operations import free_port

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"


async def imagine(
    sandbox: Sandbox, tmp_path: Path, out: Path | None, **options: bool
) -> tuple[int, str, bytes]:
    """run_imagine in this process: (exit code, what it said, what it wrote to standard output)."""
    stream = io.StringIO()
    stdout = io.TextIOWrapper(io.BytesIO(), write_through=True)
    code = await run_imagine(
        cli_settings(sandbox, tmp_path),
        "a lighthouse",
        None,
        [],
        out,
        stream=stream,
        stdout=stdout,
        **options,
    )
    return code, stream.getvalue(), stdout.buffer.getvalue()  # type: ignore[attr-defined]


async def test_an_api_that_does_not_answer_is_named_within_seconds(sandbox: Sandbox, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    process = await start_cli(
        sandbox, tmp_path, "a cat", "--out", str(tmp_path / "c.png"), env={"MOUNTSEA_BASE_URL": nowhere}
    )
    code, stdout, stderr = await finish(process)
    assert time.monotonic() - started < 10
    assert code == 1 and stdout == ""
    assert stderr.strip().splitlines() == [
        f"cannot reach the image API at {nowhere} (Connection refused); check MOUNTSEA_BASE_URL"
    ]


async def test_an_api_answering_5xx_is_waited_for_with_progress_and_ends_without_discord_words(
    tmp_path: Path,
) -> None:
    down = Sandbox(SandboxConfig(duration=0.3, outage_after=0.0, outage_for=3600.0))
    await down.start()
    try:
        process = await start_cli(
            down, tmp_path, "a cat", "--out", str(tmp_path / "c.png"), env={"OUTAGE_QUEUE_LIMIT": "14"}
        )
        code, stdout, stderr = await finish(process)
    finally:
        await down.stop()
    assert code == 1 and stdout == ""
    lines = stderr.strip().splitlines()
    waiting = [line for line in lines if "waiting for the image service at" in line]
    assert waiting and "5xx" in waiting[0], lines
    assert any(" still waiting for the image service" in line for line in lines), lines  # a heartbeat
    assert lines[-1].startswith("failed: the image service kept failing"), lines
    assert "quota" not in stderr and "Traceback" not in stderr


async def test_out_special_files_are_refused_and_symlinks_written_through(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for special in (Path("/dev/full"), fifo):
        code, said, _ = await imagine(sandbox, tmp_path, special, force=True)
        assert code == 2 and "not a regular file" in said, said
    database = cli_settings(sandbox, tmp_path).database_path
    disguised = tmp_path / "db.png"
    disguised.symlink_to(f"{database}-wal")  # resolves to the database's log
    code, said, _ = await imagine(sandbox, tmp_path, disguised, force=True)
    assert code == 2 and "the database's own file" in said
    assert submits(sandbox) == 0

    real = tmp_path / "gallery" / "real.png"
    real.parent.mkdir()
    link = tmp_path / "latest.png"
    link.symlink_to(real)
    code, said, stdout = await imagine(sandbox, tmp_path, link)
    assert code == 0, said
    assert link.is_symlink() and real.read_bytes().startswith(PNG)
    assert stdout.decode() == f"{link}\n"


async def test_out_format_follows_the_extension_and_dash_is_standard_output(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, said, stdout = await imagine(sandbox, tmp_path, tmp_path / "x.jpg")
    assert code == 0, said
    assert (tmp_path / "x.jpg").read_bytes().startswith(JPEG)
    code, said, stdout = await imagine(sandbox, tmp_path, tmp_path / "noext")
    assert code == 0 and stdout.decode() == f"{tmp_path / 'noext.png'}\n"
    assert (tmp_path / "noext.png").read_bytes().startswith(PNG) and not (tmp_path / "noext").exists()
    code, said, stdout = await imagine(sandbox, tmp_path, tmp_path / "x.gif")
    assert code == 2 and "the format follows the extension" in said

    monkeypatch.chdir(tmp_path)
    code, said, stdout = await imagine(sandbox, tmp_path, Path("-"))
    assert code == 0 and stdout.startswith(PNG), said  # the image itself, and no path printed
    assert not (tmp_path / "-").exists()
    code, said, stdout = await imagine(sandbox, tmp_path, None)
    [made] = await asyncio.to_thread(lambda: list(tmp_path.glob("imagine-*.png")))
    assert code == 0 and stdout.decode() == f"{made.name}\n" and made.read_bytes().startswith(PNG)


async def test_an_existing_out_is_kept_unless_forced(sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"yesterday's image")
    code, said, _ = await imagine(sandbox, tmp_path, out)
    assert code == 2 and "already exists; pass --force" in said
    assert out.read_bytes() == b"yesterday's image" and submits(sandbox) == 0
    code, said, _ = await imagine(sandbox, tmp_path, out, force=True)
    assert code == 0 and out.read_bytes().startswith(PNG)


async def test_when_target_and_temporary_folder_both_fail_it_says_the_write_failed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.config.duration = 1.5
    out = tmp_path / "night.png"
    process = await start_cli(sandbox, tmp_path, "make it night", "--out", str(out))
    await wait_until(lambda: sandbox.task_count, "the command's submit to reach the sandbox", timeout=20)
    out.mkdir()  # the target turns unwritable while the image is made...
    temporary = tmp_path / "tmp"
    os.rmdir(temporary)
    temporary.write_bytes(b"")  # ...and so does the temporary folder
    code, stdout, stderr = await finish(process)
    assert code == 1 and stdout == ""
    assert f"could not write {out} (" in stderr and f"nor a temporary copy in {temporary}" in stderr
    assert (
        stderr.strip().splitlines()[-1] == "failed: the image could not be saved (it was made and downloaded)"
    )
    assert "could not be downloaded" not in stderr


async def test_a_local_ref_is_refused_with_the_reason(sandbox: Sandbox, tmp_path: Path) -> None:
    local = tmp_path / "day.png"
    local.write_bytes(PNG)
    stream = io.StringIO()
    settings = cli_settings(sandbox, tmp_path)
    code = await run_imagine(settings, "night", None, [str(local)], tmp_path / "o.png", stream=stream)
    assert code == 2 and submits(sandbox) == 0
    assert stream.getvalue().strip() == (
        f"--ref {local} is a file on this computer: the image API downloads every reference itself,"
        " so it needs an http(s) URL it can reach (put the image online first)"
    )


async def test_ctrl_c_after_the_submit_names_the_task_and_says_it_may_be_billed(tmp_path: Path) -> None:
    slow = Sandbox(SandboxConfig(duration=60.0))
    await slow.start()
    try:
        process = await start_cli(slow, tmp_path, "a slow one", "--out", str(tmp_path / "s.png"))
        assert process.stderr is not None
        said = b""
        async with asyncio.timeout(20):
            while b"(task " not in said:
                said += await process.stderr.readline()
        process.send_signal(signal.SIGINT)
        code, _, rest = await finish(process)
    finally:
        await slow.stop()
    [task_id] = list(slow.tasks)
    assert code == 130
    text = said.decode() + rest
    assert f"interrupted: task {task_id} was submitted to {slow.base_url}" in text
    assert "may still run and be billed" in text and "Traceback" not in text
    assert HEARTBEAT > 0
