"""/history paging on a member with 300,000 posted images: one page (five requests and the count of
requests, up to HISTORY_COUNT_CAP) through the store's async interface, as the /history command and its
buttons ask for it (`jobs.delivered_requests`).

The pages are keyset-paged by request id on a partial index, so a page deep in the history costs what
the first one does: the timed pages are the newest, a walk of consecutive older pages, and jumps to
random points (older and newer) across the whole history. The count reads each counted row's request
(the index does not hold it), bounded by the cap."""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.stats import percentile
from bot.adapters.store import Store

GUILD = 4242
MEMBER = 1001
PAGE = 5  # bot.discord.history_view.HISTORY_PAGE_SIZE


@dataclass(frozen=True)
class HistoryResult:
    rows: int
    samples: int
    p50_ms: float
    p99_ms: float
    build_seconds: float

    def figures(self) -> dict[str, float | None]:
        return {
            "history_page_p99_ms_300k": self.p99_ms,
            "history_page_p50_ms": self.p50_ms,
            "history_rows": float(self.rows),
            "history_samples": float(self.samples),
            "history_build_s": self.build_seconds,
        }


def _fill(path: Path, rows: int, now: float) -> None:
    """One member's delivered jobs (and a few of another member, so the index is shared)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
        " INSERT INTO jobs (source, status, prompt, aspect_ratio, reference_urls, has_refs, guild_id,"
        " channel_id, user_id, created_at, submitted_at, finished_at, delivered_at, result_urls, delivery,"
        " result_message_id, result_channel_id, poll_count, poll_errors)"
        " SELECT 'discord', 'delivered', 'a prompt of ordinary length, like members write', '1:1', '[]', 0,"
        " ?, 77, CASE WHEN i % 10 = 9 THEN ? + 1 ELSE ? END, ? - (? - i) * 5.0, ? - (? - i) * 5.0 + 1,"
        " ? - (? - i) * 5.0 + 30, ? - (? - i) * 5.0 + 31, '[\"https://x/1.png\"]', 'channel',"
        " 1000000 + i, 77, 6, 0 FROM n",
        [rows * 10 // 9, GUILD, MEMBER, MEMBER, now, rows, now, rows, now, rows, now, rows],
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


async def run_history(rows: int = 300_000, samples: int = 600, seed: int = 7) -> HistoryResult:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="imagine-bench-history-") as folder:
        path = Path(folder) / "bench.db"
        started = time.perf_counter()
        await (await Store.open(path)).close()  # creates the schema
        _fill(path, rows, time.time())
        build = time.perf_counter() - started

        store = await Store.open(path)
        timings: list[float] = []
        try:
            newest, total, _, _ = await store.jobs.delivered_requests(GUILD, MEMBER, PAGE)
            assert total > 0 and len(newest) == PAGE
            top = newest[0][0].id
            cursor: int | None = None
            for index in range(samples):
                kind = index % 3
                begin = time.perf_counter()
                if kind == 0:  # the next older page of a walk from the newest
                    groups, _, _, _ = await store.jobs.delivered_requests(
                        GUILD, MEMBER, PAGE, older_than=cursor
                    )
                    cursor = groups[-1][0].request if groups else None
                elif kind == 1:  # "Older" from anywhere in the history
                    await store.jobs.delivered_requests(
                        GUILD, MEMBER, PAGE, older_than=rng.randrange(PAGE, top)
                    )
                else:  # "Newer" from anywhere
                    await store.jobs.delivered_requests(GUILD, MEMBER, PAGE, newer_than=rng.randrange(1, top))
                timings.append((time.perf_counter() - begin) * 1000.0)
        finally:
            await store.close()
    return HistoryResult(
        rows=rows,
        samples=samples,
        p50_ms=percentile(timings, 50),
        p99_ms=percentile(timings, 99),
        build_seconds=build,
    )
