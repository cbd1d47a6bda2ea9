"""Quota check + reservation + usage write for one request on PostgreSQL, with a million usage rows:
the figure of `bench/quota.py`, on the database several bot processes share.

A throwaway PostgreSQL 16 server (the `pgserver` package, as in the tests) runs on a Unix socket in a
temporary folder, unless BENCH_DATABASE_URL names one (its schema `bench_quota` is then replaced).
The same server settings and the same usage rows as the SQLite run are bulk-loaded with COPY (indexes
dropped first and rebuilt after, then ANALYZE), and admissions of random members are timed end to end
through the store's async interface: the thread hop, the pooled connection, the advisory lock, the
reads and the writes, and the commit, which waits for the disk (fsync) as PostgreSQL does by default.
A second series runs with `synchronous_commit = off` for comparison."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.quota import USAGE_COLUMNS, prepare_guild, time_admissions, usage_rows
from bench.stats import percentile
from bot.adapters.store import Store


@dataclass(frozen=True)
class PgQuotaResult:
    rows: int
    samples: int
    p50_ms: float
    p99_ms: float
    async_p99_ms: float
    build_seconds: float

    def figures(self) -> dict[str, float | None]:
        return {
            "quota_check_pg_p99_ms_1m": self.p99_ms,
            "quota_check_pg_p50_ms": self.p50_ms,
            "quota_check_pg_async_p99_ms": self.async_p99_ms,
            "quota_pg_rows": float(self.rows),
            "quota_pg_build_s": self.build_seconds,
        }


# One throwaway server per bench process, started on first use: the scenarios that need PostgreSQL
# (quotas, gallery, several processes) each work in a schema of their own on it.
_SHARED: list[str] = []


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A server URL: BENCH_DATABASE_URL, or this process's throwaway local server."""
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    if not _SHARED:
        import atexit

        import pgserver

        parent = Path(tempfile.mkdtemp(prefix="imagine-bench-pg-"))
        parent.chmod(0o755)  # run as root, pgserver starts the server as an unprivileged user
        server = pgserver.get_server(parent / "data", cleanup_mode="stop")

        def cleanup() -> None:
            server.cleanup()
            shutil.rmtree(parent, ignore_errors=True)

        atexit.register(cleanup)
        _SHARED.append(str(server.get_uri()))
    yield _SHARED[0]


def _bulk_load(url: str, rows: int, users: int, now: float, seed: int) -> None:
    with psycopg.connect(url) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'usage'"
            " AND schemaname = current_schema() AND indexname NOT LIKE '%pkey'"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor().copy(f"COPY usage ({', '.join(USAGE_COLUMNS)}) FROM STDIN") as copy:
            for row in usage_rows(rows, users, now, seed):
                copy.write_row(row)
        for _, definition in indexes:
            conn.execute(definition)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE usage")


async def run_quota_pg(
    rows: int = 1_000_000, users: int = 10_000, samples: int = 500, seed: int = 7
) -> PgQuotaResult:
    import asyncio

    now = time.time()
    with postgres_server() as server:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS bench_quota CASCADE")
            conn.execute("CREATE SCHEMA bench_quota")
        url = f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3Dbench_quota"
        started = time.perf_counter()
        store = await Store.open_url(url)  # creates the schema
        try:
            await prepare_guild(store, now)
            await asyncio.to_thread(_bulk_load, url, rows, users, now, seed)
            build = time.perf_counter() - started
            timings = await time_admissions(store, users, samples, seed)
        finally:
            await store.close()
        # The same without waiting for the disk at each commit (synchronous_commit = off, set by the
        # operator in the URL): what the figure is made of on a machine whose fsync is slow.
        store = await Store.open_url(f"{url}%20-csynchronous_commit%3Doff")
        try:
            async_timings = await time_admissions(store, users, samples, seed + 1)
        finally:
            await store.close()
    return PgQuotaResult(
        rows=rows,
        samples=samples,
        p50_ms=percentile(timings, 50),
        p99_ms=percentile(timings, 99),
        async_p99_ms=percentile(async_timings, 99),
        build_seconds=build,
    )
