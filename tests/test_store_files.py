"""The database file itself: a damaged one is found at start-up and stops the bot with one line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.adapters.store import Store, StoreCorruptError
from bot.core.models import ImageRequest, Origin

ROOT = Path(__file__).resolve().parents[1]


async def make_database(path: Path, jobs: int = 2000) -> None:
    store = await Store.open(path)
    try:
        for n in range(jobs):
            await store.jobs.create(
                ImageRequest(f"job {n} " + "words " * 30), Origin(source="test"), float(n)
            )
    finally:
        await store.close()


def corrupt_middle_page(path: Path) -> None:
    size = path.stat().st_size
    page = 4096
    offset = (size // page // 2) * page
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(b"\xde\xad\xbe\xef" * (page // 4))


async def test_a_damaged_database_stops_the_bot_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    await make_database(db)
    corrupt_middle_page(db)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MOUNTSEA_", "DISCORD_"))},
        "DISCORD_TOKEN": "MTAxMDEwMTAxMDEwMTAxMDEw.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789",
        "MOUNTSEA_API_KEY": "sandbox-key",
        "MOUNTSEA_BASE_URL": "http://127.0.0.1:9",
        "DATABASE_PATH": str(db),
        "PYTHONPATH": str(ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    text = stderr.decode()
    assert process.returncode == 1, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "damaged" in lines[0] and str(db) in lines[0] and "backup" in lines[0]
    assert "Traceback" not in text + stdout.decode()


async def test_opening_the_store_finds_a_damaged_page(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    await make_database(db, jobs=50)
    store = await Store.open(db)
    await store.close()
    corrupt_middle_page(db)
    try:
        await Store.open(db)
    except StoreCorruptError as error:
        assert "damaged" in str(error)
    else:
        raise AssertionError("a damaged page went unnoticed")
