"""Peak memory of a process delivering a huge result image, and of one polling a huge answer.

The issue's figures before the caps: a 10.8 MB PNG of 13000x13000 pixels decoded in full took
1.35 GB, and a 400 MB status answer read whole 1.5 GB. Here this process serves a PNG of that size
(mostly one colour, with enough noise rows to weigh over 10 MB, so it is over the upload limit as
theirs was) and a status answer that streams 400 MB; a fresh `python -m bench.memworker` process
does the bot's work on each, and reports its own peak resident memory (VmHWM).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bench.profiles import Profile
from sandbox.server import Sandbox, SandboxConfig

REPO = Path(__file__).resolve().parent.parent
NOISE_EVERY = 45  # one row of noise in this many: about 11 MB for 13000 x 13000


def write_png(path: Path, side: int, noise_every: int = NOISE_EVERY) -> int:
    """A side x side RGB PNG, written row by row (never whole in memory); returns its size in bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(6)
    plain = b"\x00" + bytes([40, 90, 160]) * side  # filter byte, then the row
    with path.open("wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)))
        for y in range(side):
            row = b"\x00" + os.urandom(3 * side) if y % noise_every == 0 else plain
            if data := compressor.compress(row):
                out.write(chunk(b"IDAT", data))
        out.write(chunk(b"IDAT", compressor.flush()))
        out.write(chunk(b"IEND", b""))
    return path.stat().st_size


@dataclass(frozen=True)
class MemoryResult:
    png: dict[str, object]
    at_limit: dict[str, object]
    answer: dict[str, object]
    png_side: int
    png_bytes: int
    answer_mb: int

    def figures(self) -> dict[str, float | None]:
        return {
            "rss_mb_huge_png": float(self.png["rss_peak_mb"]),  # type: ignore[arg-type]
            "rss_mb_huge_answer": float(self.answer["rss_peak_mb"]),  # type: ignore[arg-type]
            "rss_mb_limit_png": float(self.at_limit["rss_peak_mb"]),  # type: ignore[arg-type]
            "huge_png_side": float(self.png_side),
            "huge_png_mb": round(self.png_bytes / 1024 / 1024, 1),
            "huge_answer_mb": float(self.answer_mb),
        }


async def _serve(folder: Path, answer_mb: int) -> tuple[web.AppRunner, str]:
    async def image(request: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / request.match_info["name"], headers={"Content-Type": "image/png"})

    async def endless(request: web.Request) -> web.StreamResponse:
        # No Content-Length: the client cannot know the size before reading.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"taskId": "huge-answer", "status": "completed", "result": {"pad": "')
        block = b"x" * (1024 * 1024)
        try:
            for _ in range(answer_mb):
                await response.write(block)
            await response.write(b'"}}')
        except ConnectionError:
            pass  # the client stopped reading, as it should
        return response

    app = web.Application()
    app.router.add_get("/images/{name}", image)
    app.router.add_get("/xai/tasks", endless)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"127.0.0.1:{runner.addresses[0][1]}"


async def _worker(args: list[str], out: Path) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.memworker",
        *args,
        "--out",
        str(out),
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 180.0)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError("the memory worker did not finish within 180 s") from None
    result = _read_result(out)
    if process.returncode != 0 or result is None:
        tail = output.decode(errors="replace")[-2000:]
        raise RuntimeError(f"the memory worker failed (exit {process.returncode}):\n{tail}")
    return result


def _read_result(out: Path) -> dict[str, object] | None:
    if not out.exists():
        return None
    result: dict[str, object] = json.loads(out.read_text())
    return result


async def run_memory(profile: Profile) -> MemoryResult:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = Path(tmp)
        size = await asyncio.to_thread(write_png, folder / "big.png", profile.memory_png_side)
        # Noisier, so that it is over the 10 MiB upload limit and the sink re-encodes it.
        await asyncio.to_thread(write_png, folder / "limit.png", profile.memory_limit_side, 3)
        runner, host = await _serve(folder, profile.memory_answer_mb)
        sandbox = Sandbox(SandboxConfig(duration=0.0))
        base_url = await sandbox.start()
        try:
            sandbox.force_next("completed", result={"images": [f"http://{host}/images/big.png"]})
            sandbox.force_next("completed", result={"images": [f"http://{host}/images/limit.png"]})
            args = ["image", "--base-url", base_url, "--image-host", host]
            delivered = await _worker(args, folder / "image.json")
            at_limit = await _worker(args, folder / "limit.json")
            polled = await _worker(["answer", "--base-url", f"http://{host}"], Path(tmp) / "answer.json")
        finally:
            await sandbox.stop()
            await runner.cleanup()
    # A figure is only worth something if the work was done: a failed download would look thrifty.
    if not any("pixels" in str(got) for got in delivered["member_got"]):  # type: ignore[attr-defined]
        raise RuntimeError(f"the huge PNG was not refused for its size: {delivered['member_got']}")
    if not any(str(got).startswith("an image") for got in at_limit["member_got"]):  # type: ignore[attr-defined]
        raise RuntimeError(f"the PNG at the limit was not delivered: {at_limit['member_got']}")
    print(f"[bench] memory: the member got {'; '.join(map(str, delivered['member_got']))}")  # type: ignore[call-overload]
    print(f"[bench] memory: at the pixel limit, the member got {'; '.join(map(str, at_limit['member_got']))}")  # type: ignore[call-overload]
    print(f"[bench] memory: the {profile.memory_answer_mb} MB answer was {polled['outcome']}")
    return MemoryResult(delivered, at_limit, polled, profile.memory_png_side, size, profile.memory_answer_mb)
