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
from bot.core.usage_records import EXPORT_COLUMNS
from tests.quota_race_child import GUILD, NOW

ROOT = Path(__file__).resolve().parent.parent
MOD = 999


async def race(pg_url: str, *extra: str) -> list[int]:
    """Three child processes admit 17, 17 and 16 requests at one agreed moment; how many each got."""
    start = time.time() + 3.0  # every child has its pool open by then, so the admissions overlap
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.quota_race_child", pg_url, str(start), str(count), *extra,
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
    return [int(out) for out, _ in outputs]


async def usage_log(pg_url: str) -> list[dict[str, object]]:
    store = await Store.open_url(pg_url)
    try:
        rows = await store.usage.export(GUILD, 0, NOW + 10, 1000)
    finally:
        await store.close()
    return [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows]


async def test_fifty_admissions_over_three_processes_start_exactly_the_quota(pg_url: str) -> None:
    store = await Store.open_url(pg_url)
    try:
        await store.settings.update_policy(GUILD, MOD, NOW, default_quota=5, max_running=100)
    finally:
        await store.close()
    allowed = await race(pg_url)
    assert sum(allowed) == 5, allowed
    counted = [row for row in await usage_log(pg_url) if row["outcome"] == "submitted"]
    assert len(counted) == 5, counted


async def test_requests_of_several_video_tasks_never_overspend_across_processes(pg_url: str) -> None:
    """50 requests of 2 tasks of 3 units each (two videos) against 20 units: 3 requests fit whole (18
    units); the 2 units left fit no video, so nothing else is reserved, and no request is cut."""
    store = await Store.open_url(pg_url)
    try:
        await store.settings.update_policy(GUILD, MOD, NOW, default_quota=20, max_running=100)
    finally:
        await store.close()
    allowed = await race(pg_url, "2", "3")
    assert sum(allowed) == 3, allowed
    log = await usage_log(pg_url)
    reserved = [row for row in log if row["outcome"] == "submitted"]
    assert len(reserved) == 6 and sum(int(str(row["counted"])) for row in reserved) == 18
    by_request: dict[object, list[dict[str, object]]] = {}
    for row in reserved:
        by_request.setdefault(row["request_id"], []).append(row)
    assert len(by_request) == 3 and all(len(rows) == 2 for rows in by_request.values())
    assert {row["reason"] for row in log if row["outcome"] == "refused"} == {"quota"}
