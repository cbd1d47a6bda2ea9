"""The web gallery's queries at scale: My images pages and prompt searches of one member with many
images, in a database of `rows` posted images (prompts mixing English and Chinese words), on SQLite and
on PostgreSQL, through the store's async interface as the gallery's pages call it.

Timed: the newest page, pages deep in the history (keyset: a random `before` id), a page with a
filter, and searches for a common English word, a Chinese two-character word and two words at once;
beside them a server's gallery page (one server of three holds a third of the images). The database
is bulk-loaded (the prompt words computed by the gallery's own tokenizer).

`run_gallery_browser` measures the page itself in headless Chromium on 127.0.0.1: the gallery server
(signed in through the fake Discord) on a bulk-loaded SQLite database, My images opened in a fresh
browser context each time (an empty cache): its largest contentful paint (a PerformanceObserver), and
the bytes transferred for the page before its images (the document, its scripts and styles)."""

from __future__ import annotations

import asyncio
import io
import json
import random
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image, ImageDraw

from bench.quota_pg import postgres_server
from bench.stats import percentile
from bot.adapters.store import GalleryFilter, Store
from bot.adapters.thumbnails import ThumbnailStore
from bot.core.prompt_words import index_terms, query_terms

MEMBER = 5005
SERVER = 4242  # one of the three servers the images are posted in
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
    server_page_p95_ms: float
    server_page_pg_p95_ms: float

    def figures(self) -> dict[str, float | None]:
        return {
            "gallery_page_p95_ms": self.page_p95_ms,
            "gallery_search_p95_ms": self.search_p95_ms,
            "gallery_page_pg_p95_ms": self.page_pg_p95_ms,
            "gallery_search_pg_p95_ms": self.search_pg_p95_ms,
            "gallery_server_page_p95_ms": self.server_page_p95_ms,
            "gallery_server_page_pg_p95_ms": self.server_page_pg_p95_ms,
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


async def _time(
    store: Store, rows: int, samples: int, seed: int
) -> tuple[list[float], list[float], list[float]]:
    rng = random.Random(seed)
    pages: list[float] = []
    searches: list[float] = []
    server_pages: list[float] = []
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
        started = time.perf_counter()
        await store.gallery.server_page(
            SERVER, flt, hide_banned=True, now=time.time(), before_id=before, limit=PAGE
        )
        server_pages.append((time.perf_counter() - started) * 1000)
    return pages, searches, server_pages


async def run_gallery(rows: int, samples: int, seed: int = 7) -> GalleryResult:
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="imagine-bench-gallery-") as folder:
        path = Path(folder) / "gallery.db"
        await (await Store.open(path)).close()  # the schema
        await asyncio.to_thread(_fill_sqlite, path, rows, seed, now)
        store = await Store.open(path)
        try:
            await _time(store, rows, max(5, samples // 10), seed)  # warm the page cache
            pages, searches, server_pages = await _time(store, rows, samples, seed + 1)
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
            pg_pages, pg_searches, pg_server_pages = await _time(store, rows, samples, seed + 1)
        finally:
            await store.close()
    return GalleryResult(
        rows=rows,
        member_rows=(rows + 9) // 10,
        page_p95_ms=percentile(pages, 95),
        search_p95_ms=percentile(searches, 95),
        page_pg_p95_ms=percentile(pg_pages, 95),
        search_pg_p95_ms=percentile(pg_searches, 95),
        server_page_p95_ms=percentile(server_pages, 95),
        server_page_pg_p95_ms=percentile(pg_server_pages, 95),
    )


# -- the page in a real browser ------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"]
# Registered before the page's own code: every largest-contentful-paint candidate, buffered.
LCP_OBSERVER = """
window.__lcp = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__lcp = Math.max(window.__lcp, entry.startTime);
}).observe({ type: "largest-contentful-paint", buffered: true });
"""
# Once every picture in view has loaded, two frames later: the last candidate has been reported.
SETTLED = """
async () => {
  const inView = [...document.images].filter((i) => i.getBoundingClientRect().top < innerHeight);
  await Promise.all(inView.map((i) => i.complete ? null : new Promise((r) => { i.onload = i.onerror = r; })));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const nav = performance.getEntriesByType("navigation")[0];
  const assets = performance.getEntriesByType("resource")
    .filter((e) => e.initiatorType === "script" || e.initiatorType === "link" || e.initiatorType === "css");
  return { lcp: window.__lcp, bytes: nav.transferSize + assets.reduce((n, e) => n + e.transferSize, 0),
           images: inView.length };
}
"""


@dataclass(frozen=True)
class BrowserResult:
    rows: int
    runs: int
    lcp_p95_ms: float
    page_kb: float  # the largest of the runs

    def figures(self) -> dict[str, float | None]:
        return {
            "gallery_lcp_p95_ms": self.lcp_p95_ms,
            "gallery_page_kb": self.page_kb,
            "gallery_browser_rows": float(self.rows),
            "gallery_browser_runs": float(self.runs),
        }


def _thumbnails(store: ThumbnailStore, rows: int) -> None:
    """The member's newest page has its thumbnails (as the bot keeps them when it posts)."""
    newest = [job_id for job_id in range(rows, 0, -1) if (job_id - 1) % 10 == 0][:PAGE]
    for n, job_id in enumerate(newest):
        image = Image.new("RGB", (600, 600), (40 + n * 6, 120, 200 - n * 4))
        ImageDraw.Draw(image).ellipse([120, 120, 480, 480], fill=(250, 230, 160))
        out = io.BytesIO()
        image.save(out, "PNG")
        store.write(job_id, 0, out.getvalue())


async def run_gallery_browser(rows: int, runs: int, seed: int = 7) -> BrowserResult:
    from playwright.async_api import async_playwright

    from bot.ops.config import Secret, Settings
    from bot.web.gallery_server import WebServer
    from testing.fake_discord import FakeDiscord

    now = time.time()
    with tempfile.TemporaryDirectory(prefix="imagine-bench-gallery-page-") as folder:
        path = Path(folder) / "gallery.db"
        await (await Store.open(path)).close()
        await asyncio.to_thread(_fill_sqlite, path, rows, seed, now)
        await asyncio.to_thread(_thumbnails, ThumbnailStore(Path(folder) / "thumbnails"), rows)
        fake = FakeDiscord()
        await fake.start()
        fake.add_user("bench-member", user_id=MEMBER)
        fake.oauth.signed_in_as = MEMBER
        store = await Store.open(path)
        settings = Settings(
            discord_token=Secret(fake.token),
            api_key=Secret("bench-api-key"),
            database_path=path,
            discord_api_base=fake.api_base,
            web_port=_free_port(),
            web_session_secret=Secret("bench-web-session-secret-0123456789abcdef"),
            discord_client_id=fake.application_id,
            discord_client_secret=Secret(fake.oauth.client_secret),
            discord_authorize_url=fake.oauth.authorize_url,
        )
        server = WebServer(settings, store, login_rate=(10_000, 60.0), search_rate=(10_000, 60.0))
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        playwright = await async_playwright().start()
        lcps: list[float] = []
        sizes: list[float] = []
        try:
            chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            signing = await chromium.new_context()
            page = await signing.new_page()
            await page.goto(base + "/login/discord")
            await page.wait_for_url(base + "/me")
            cookies = await signing.cookies()
            await signing.close()
            for _ in range(runs + 1):  # the first warms the server (its templates, the page cache)
                context = await chromium.new_context(viewport={"width": 1280, "height": 800})
                await context.add_cookies(cookies)  # type: ignore[arg-type]  # a Cookie is a SetCookieParam
                page = await context.new_page()
                await page.add_init_script(LCP_OBSERVER)
                await page.goto(base + "/me")
                measured = await page.evaluate(SETTLED)
                # Candidates are reported a little after their paint (its time is what counts): wait for
                # one, then a moment for a later, larger one.
                await page.wait_for_function("() => window.__lcp > 0", timeout=10_000)
                await page.wait_for_timeout(250)
                measured["lcp"] = await page.evaluate("window.__lcp")
                await context.close()
                assert measured["images"] > 0 and measured["lcp"] > 0, measured
                lcps.append(float(measured["lcp"]))
                sizes.append(measured["bytes"] / 1024)
            await chromium.close()
        finally:
            await playwright.stop()
            await server.stop()
            await store.close()
            await fake.stop()
    return BrowserResult(rows, runs, percentile(lcps[1:], 95), max(sizes[1:]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
