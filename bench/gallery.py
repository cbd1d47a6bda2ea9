"""The web gallery's queries at scale: My images pages and prompt searches of one member with many
images, in a database of `rows` posted images (prompts mixing English and Chinese words), on SQLite and
on PostgreSQL, through the store's async interface as the gallery's pages call it.

Timed: the newest page, pages deep in the history (keyset: a random `before` id), a page with a
filter, and searches for a common English word, a Chinese two-character word and two words at once.
The database is bulk-loaded (the prompt words computed by the gallery's own tokenizer)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.quota_pg import postgres_server
from bench.stats import percentile
from bot.adapters.store import GalleryFilter, Store
from bot.core.prompt_words import index_terms, query_terms

MEMBER = 5005
OTHERS = 1000
PAGE = 31  # the gallery asks for one more than it shows (30)
ENGLISH = [
    "cat", "fox", "lighthouse", "mountain", "river", "city", "night", "watercolor", "oil", "portrait",
    "forest", "dragon", "castle", "ocean", "sunset", "robot", "garden", "winter", "neon", "desert",
]  # fmt: skip
CHINESE = ["水彩", "山水", "城市", "夜晚", "小猫", "狐狸", "灯塔", "森林", "海洋", "花园", "机器", "沙漠"]
RATIOS = ["1:1", "16:9", "9:16", "2:3", "3:2"]
JOB_COLUMNS = (
    "source", "status", "prompt", "aspect_ratio", "reference_urls", "has_refs", "guild_id", "channel_id",
    "user_id", "created_at", "delivered_at", "result_urls", "delivery", "result_message_id",
    "result_channel_id", "poll_count", "poll_errors",
)  # fmt: skip


@dataclass(frozen=True)
class GalleryResult:
    rows: int
    member_rows: int
    page_p95_ms: float
    search_p95_ms: float
    page_pg_p95_ms: float
    search_pg_p95_ms: float

    def figures(self) -> dict[str, float | None]:
        return {
            "gallery_page_p95_ms": self.page_p95_ms,
            "gallery_search_p95_ms": self.search_p95_ms,
            "gallery_page_pg_p95_ms": self.page_pg_p95_ms,
            "gallery_search_pg_p95_ms": self.search_pg_p95_ms,
            "gallery_rows": float(self.rows),
            "gallery_member_rows": float(self.member_rows),
        }


def _images(rows: int, seed: int, now: float) -> Iterator[tuple[tuple[Any, ...], set[str]]]:
    """(job row, prompt terms) per image; job ids are 1..rows in this order. One in ten is MEMBER's."""
    rng = random.Random(seed)
    for i in range(rows):
        words = rng.sample(ENGLISH, 4) + rng.sample(CHINESE, 2)
        rng.shuffle(words)
        prompt = " ".join(words[:3]) + "，" + "".join(words[3:])
        user = MEMBER if i % 10 == 0 else 10_000 + rng.randrange(OTHERS)
        created = now - (rows - i) * 3.0
        row = (
            "discord", "delivered", prompt, rng.choice(RATIOS), "[]", 0, 4242 + (i % 3), 77, user, created,
            created + 30, json.dumps([f"https://cdn.example/{i}.png"]), "channel", 10_000_000 + i, 77, 6, 0,
        )  # fmt: skip
        yield row, index_terms(prompt)


def _fill_sqlite(path: Path, rows: int, seed: int, now: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    marks = ", ".join("?" for _ in JOB_COLUMNS)
    for job_id, (row, terms) in enumerate(_images(rows, seed, now), start=1):
        conn.execute(f"INSERT INTO jobs (id, {', '.join(JOB_COLUMNS)}) VALUES (?, {marks})", (job_id, *row))
        conn.executemany(
            "INSERT INTO prompt_terms (user_id, term, job_id) VALUES (?, ?, ?)",
            [(row[8], term, job_id) for term in terms],
        )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _fill_pg(url: str, rows: int, seed: int, now: float) -> None:
    with psycopg.connect(url) as conn:
        with conn.cursor().copy(f"COPY jobs (id, {', '.join(JOB_COLUMNS)}) FROM STDIN") as jobs:
            for job_id, (row, _) in enumerate(_images(rows, seed, now), start=1):
                jobs.write_row((job_id, *row))
        # A second pass over the same (seeded) images: millions of term rows are never held at once.
        with conn.cursor().copy("COPY prompt_terms (user_id, term, job_id) FROM STDIN") as copy:
            for job_id, (row, terms) in enumerate(_images(rows, seed, now), start=1):
                for term in terms:
                    copy.write_row((row[8], term, job_id))
        conn.execute("SELECT setval(pg_get_serial_sequence('jobs', 'id'), %s)", [rows])
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE jobs")
        conn.execute("VACUUM ANALYZE prompt_terms")


async def _time(store: Store, rows: int, samples: int, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    pages: list[float] = []
    searches: list[float] = []
    searches_asked = [query_terms(q) for q in ("watercolor", "水彩", "lighthouse 城市", "dragon neon", "猫")]
    for n in range(samples):
        before = None if n % 4 == 0 else rng.randrange(PAGE, rows)
        flt = GalleryFilter(aspect_ratio="16:9") if n % 5 == 4 else GalleryFilter()
        started = time.perf_counter()
        await store.gallery.page(MEMBER, flt, before_id=before, limit=PAGE)
        pages.append((time.perf_counter() - started) * 1000)
        terms = searches_asked[n % len(searches_asked)]
        started = time.perf_counter()
        await store.gallery.page(MEMBER, GalleryFilter(terms=tuple(terms)), before_id=before, limit=PAGE)
        searches.append((time.perf_counter() - started) * 1000)
    return pages, searches


async def run_gallery(rows: int, samples: int, seed: int = 7) -> GalleryResult:
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="imagine-bench-gallery-") as folder:
        path = Path(folder) / "gallery.db"
        await (await Store.open(path)).close()  # the schema
        await asyncio.to_thread(_fill_sqlite, path, rows, seed, now)
        store = await Store.open(path)
        try:
            await _time(store, rows, max(5, samples // 10), seed)  # warm the page cache
            pages, searches = await _time(store, rows, samples, seed + 1)
        finally:
            await store.close()
    with postgres_server() as server:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS bench_gallery CASCADE")
            conn.execute("CREATE SCHEMA bench_gallery")
        url = f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3Dbench_gallery"
        store = await Store.open_url(url)
        try:
            await asyncio.to_thread(_fill_pg, url, rows, seed, now)
            await _time(store, rows, max(5, samples // 10), seed)
            pg_pages, pg_searches = await _time(store, rows, samples, seed + 1)
        finally:
            await store.close()
    return GalleryResult(
        rows=rows,
        member_rows=(rows + 9) // 10,
        page_p95_ms=percentile(pages, 95),
        search_p95_ms=percentile(searches, 95),
        page_pg_p95_ms=percentile(pg_pages, 95),
        search_pg_p95_ms=percentile(pg_searches, 95),
    )
