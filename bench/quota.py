"""Quota check + reservation + usage write for one request, on a database with a million usage rows.

The database is built once per run in a temporary folder: 1,000,000 usage rows across 10,000 members of
one server over the last 30 days (the shape of a big community), plus role limits and prompt rules so
every part of the check does real work. Then requests from random members are admitted one at a time
through the store's async interface, exactly as /imagine does, and each is timed end to end (the hop to
the writer thread included)."""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.stats import percentile
from bot.adapters.store import Store
from bot.core.models import ImageRequest, Origin
from bot.core.policy.quotas import Member
from bot.core.policy.rulebook import RuleBook

GUILD = 4242
ADMIN = 1
DAY = 86_400.0


@dataclass(frozen=True)
class QuotaResult:
    rows: int
    users: int
    samples: int
    p50_ms: float
    p99_ms: float
    build_seconds: float

    def figures(self) -> dict[str, float | None]:
        # Smaller profiles build a smaller table: the key keeps its name, `quota_rows` says the size.
        return {
            "quota_check_p99_ms_1m": self.p99_ms,
            "quota_check_p50_ms": self.p50_ms,
            "quota_rows": float(self.rows),
            "quota_samples": float(self.samples),
            "quota_build_s": self.build_seconds,
        }


def _fill(path: Path, rows: int, users: int, now: float, seed: int) -> None:
    """Generate the rows inside SQLite (a recursive CTE) with the usage indexes dropped and rebuilt
    afterwards from their own definitions: the same schema, built in seconds instead of minutes."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage' AND sql IS NOT NULL"
    ).fetchall()
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    # SQLite's random() cannot be seeded; the seed only varies the member numbering, which is enough
    # for a figure that depends on row counts and index shapes, not on exact values.
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
        " INSERT INTO usage (guild_id, channel_id, user_id, created_at, prompt, aspect_ratio, ref_count,"
        " outcome, reason, counted)"
        " SELECT ?, 77, 1000 + ((i * 7919 + ?) % ?), ? - (abs(random()) % ?) / 1000.0,"
        " 'a prompt of ordinary length, like members write', '1:1', 0,"
        " CASE i % 5 WHEN 3 THEN 'failed' WHEN 4 THEN 'refused' ELSE 'completed' END,"
        " CASE i % 5 WHEN 4 THEN 'quota' END, CASE WHEN i % 5 < 3 THEN 1 ELSE 0 END FROM n",
        [rows, GUILD, seed, users, now, int(30 * DAY * 1000)],
    )
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


async def prepare_guild(store: Store, now: float) -> None:
    """The server's policy, role limits and prompt rules, so every part of the check does real work."""
    await store.settings.update_policy(
        GUILD, ADMIN, now, default_quota=50, max_running=1000, cooldown_seconds=0
    )
    for role in range(10):
        await store.settings.set_role_quota(GUILD, 500 + role, 20 + role, ADMIN, now)
    for word in ("gore", "nsfw", "blood"):
        await store.settings.add_rule(GUILD, "word", word, ADMIN, now)
    await store.settings.add_rule(GUILD, "regex", r"b[l1]ood\s*bath", ADMIN, now)


def usage_rows(rows: int, users: int, now: float, seed: int) -> Iterator[tuple[object, ...]]:
    """The rows `_fill` generates inside SQLite, generated in Python (for PostgreSQL's COPY): the same
    members, outcomes and 30-day spread. Columns: USAGE_COLUMNS."""
    rng = random.Random(seed)
    span = 30 * DAY
    for i in range(rows):
        kind = i % 5
        yield (
            GUILD, 77, 1000 + ((i * 7919 + seed) % users), now - rng.random() * span,
            "a prompt of ordinary length, like members write", "1:1", 0,
            "failed" if kind == 3 else "refused" if kind == 4 else "completed",
            "quota" if kind == 4 else None, 1 if kind < 3 else 0,
        )  # fmt: skip


USAGE_COLUMNS = (
    "guild_id", "channel_id", "user_id", "created_at", "prompt", "aspect_ratio", "ref_count", "outcome",
    "reason", "counted",
)  # fmt: skip


async def time_admissions(store: Store, users: int, samples: int, seed: int) -> list[float]:
    """`samples` admissions of random members, one at a time as /imagine makes them, in milliseconds."""
    rng = random.Random(seed)
    rules = RuleBook(store.settings)
    timings: list[float] = []
    request = ImageRequest("a lighthouse at dusk, oil painting", "16:9")
    for _ in range(samples):
        user = 1000 + rng.randrange(users)
        member = Member(GUILD, user, role_ids=(500 + rng.randrange(10), 999))
        origin = Origin(source="bench", guild_id=GUILD, channel_id=77, user_id=user)
        begin = time.perf_counter()
        rule_match = await rules.check(GUILD, request.prompt)
        await store.usage.admit(member, request, origin, time.time(), 10, rule_match=rule_match)
        timings.append((time.perf_counter() - begin) * 1000.0)
    return timings


async def run_quota(
    rows: int = 1_000_000, users: int = 10_000, samples: int = 500, seed: int = 7
) -> QuotaResult:
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="imagine-bench-quota-") as folder:
        path = Path(folder) / "bench.db"
        started = time.perf_counter()
        store = await Store.open(path)  # creates the schema
        await prepare_guild(store, now)
        await store.close()
        _fill(path, rows, users, now, seed)
        build = time.perf_counter() - started

        store = await Store.open(path)
        try:
            timings = await time_admissions(store, users, samples, seed)
        finally:
            await store.close()
    return QuotaResult(
        rows=rows,
        users=users,
        samples=samples,
        p50_ms=percentile(timings, 50),
        p99_ms=percentile(timings, 99),
        build_seconds=build,
    )
