"""The quota race across real processes: 50 simultaneous admissions of one member, spread over three
processes that share one PostgreSQL, start exactly the member's quota.

Through Discord this race cannot be staged faithfully (every interaction of a server goes to the one
process running its shard), so the processes here run the bot's admission path directly: the same
`Store.admit` each bot process calls, each process with its own connection pool."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bot.adapters.store import Store
from tests.quota_race_child import GUILD, NOW

ROOT = Path(__file__).resolve().parent.parent
MOD = 999


async def test_fifty_admissions_over_three_processes_start_exactly_the_quota(pg_url: str) -> None:
    store = await Store.open_url(pg_url)
    try:
        await store.update_policy(GUILD, MOD, NOW, default_quota=5, max_running=100)
    finally:
        await store.close()
    start = time.time() + 3.0  # every child has its pool open by then, so the admissions overlap
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.quota_race_child", pg_url, str(start), str(count),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for count in (17, 17, 16)
    ]  # fmt: skip
    try:
        outputs = await asyncio.wait_for(asyncio.gather(*(child.communicate() for child in children)), 40)
    except TimeoutError:
        for child in children:
            if child.returncode is None:
                child.kill()
        raise TimeoutError("the three admitting processes did not all end within 40 s") from None
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()[-2000:]
    allowed = [int(out) for out, _ in outputs]
    assert sum(allowed) == 5, allowed

    store = await Store.open_url(pg_url)
    try:
        rows = await store.export_usage(GUILD, 0, NOW + 10, 100)
    finally:
        await store.close()
    counted = [row for row in rows if "submitted" in row]
    assert len(counted) == 5, rows
