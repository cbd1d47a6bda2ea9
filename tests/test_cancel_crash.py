"""A cancel is one transaction: a process killed anywhere inside it leaves the job either still running
(not told, its use counted) or cancelled, recorded as told and never told again after a restart.

Before, a cancel was three transactions (end, who cancelled, told): a crash between them left an ended
job with `delivered_at` unset, and the next start told the requester a second time."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

from bot.adapters.store import Store
from tests.cancel_crash_child import main as _child_main  # noqa: F401 - the child must import cleanly
from tests.store_crash_child import CRASHED, USER

ROOT = Path(__file__).resolve().parent.parent
RUNNING = ("running", None, None, None, 1)
CANCELLED = ("cancelled", "cancelled", USER, True, 1)  # a requester's cancel of a sent job still counts


def state(path: Path) -> tuple[Any, ...]:
    conn = sqlite3.connect(path)
    try:
        status, delivery, cancelled_by, delivered_at = conn.execute(
            "SELECT status, delivery, cancelled_by, delivered_at FROM jobs"
        ).fetchone()
        counted = conn.execute("SELECT counted FROM usage").fetchone()[0]
    finally:
        conn.close()
    told = None if delivered_at is None else True
    return (status, delivery, cancelled_by, told, counted)


async def run_child(path: Path, crash_at: int) -> int:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.cancel_crash_child", str(path), str(crash_at), cwd=ROOT
    )
    return await child.wait()


async def test_a_cancel_killed_anywhere_is_all_or_nothing(tmp_path: Path) -> None:
    crash_points = range(1, 9)
    paths = [tmp_path / f"cancel-{n}.db" for n in crash_points]
    async with asyncio.timeout(120):
        codes = await asyncio.gather(*(run_child(p, n) for p, n in zip(paths, crash_points, strict=True)))
    assert codes[0] == CRASHED, "the cancel wrote nothing to crash after"
    assert 0 in codes, "the cancel has more statements than the crash points tried"
    assert codes.count(CRASHED) >= 3, codes  # killed between the statements of the one transaction
    for path, code in zip(paths, codes, strict=True):
        assert code in (0, CRASHED)
        assert state(path) == (CANCELLED if code == 0 else RUNNING), code
        # What the next start would pick up to tell: nothing (a running job is followed by the poll loop).
        store = await Store.open(path)
        try:
            assert await store.jobs_to_resume("discord", now=1_900_000_000.0) == []
        finally:
            await store.close()
