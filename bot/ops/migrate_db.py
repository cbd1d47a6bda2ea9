"""`python -m bot migrate-db --to postgresql://…`: copy the SQLite database into PostgreSQL, for the
move to more than one process.

The SQLite file is first brought to the newest schema (by opening it, as the bot does), the target
gets the PostgreSQL schema, then every table is copied in ONE PostgreSQL transaction with COPY, the
id sequences are moved past the copied ids, and the row counts of both sides are compared before the
commit: the target ends up with all of it or none of it. A target that already holds rows is refused
unless `--replace` is given (which empties it first, in the same transaction), so running the command
twice never duplicates anything. Stop the bot first: rows written meanwhile would not be copied.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bot.adapters.store import Store
from bot.adapters.store.pg_schema import TABLES
from bot.core.redaction import database_error, redact

# Which process holds a job means nothing once the SQLite bot has stopped: not copied.
_PROCESS_STATE = ("lease_owner", "leased_until")
# Tables whose `id` comes from a sequence on PostgreSQL.
_SERIAL = ("jobs", "usage", "prompt_rules", "admin_log", "styles")


class MigrateError(Exception):
    """One line for the operator, and the exit code (1: failed, 2: refused)."""

    def __init__(self, text: str, code: int = 1) -> None:
        super().__init__(text)
        self.code = code


@dataclass(frozen=True)
class Copied:
    counts: dict[str, int]


async def migrate_database(source: Path, url: str, *, replace: bool = False) -> Copied:
    if not await asyncio.to_thread(source.exists):
        raise MigrateError(f"no SQLite database at {source}; set DATABASE_PATH or pass --from", 2)
    # Both ends at the newest schema, exactly as the bot would bring them there.
    store = await Store.open(source)
    await store.close()
    target = await Store.open_url(url, pool_size=1)
    await target.close()
    return await asyncio.to_thread(_copy, source, url, replace)


def _copy(source: Path, url: str, replace: bool) -> Copied:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        with psycopg.connect(url) as dst:  # not autocommit: everything below is one transaction
            counts = _copy_tables(src, dst, replace)
            dst.commit()
            return Copied(counts)
    finally:
        src.close()


def _pg_columns(dst: psycopg.Connection[Any], table: str) -> list[str]:
    rows = dst.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = %s AND table_schema = current_schema() ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _count(dst: psycopg.Connection[Any], table: str) -> int:
    row = dst.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _copy_tables(src: sqlite3.Connection, dst: psycopg.Connection[Any], replace: bool) -> dict[str, int]:
    # No process may write while the copy runs (and a second copy waits for this one).
    dst.execute(f"LOCK TABLE {', '.join(TABLES)} IN ACCESS EXCLUSIVE MODE")
    holding = {table: n for table in TABLES if (n := _count(dst, table))}
    if holding and not replace:
        listed = ", ".join(f"{table} ({n} rows)" for table, n in holding.items())
        raise MigrateError(
            f"the target database already holds rows: {listed}; nothing copied."
            " Pass --replace to empty it first (everything in it is lost)",
            2,
        )
    if holding:
        dst.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
    counts: dict[str, int] = {}
    for table in TABLES:
        source_columns = [str(r[1]) for r in src.execute(f"PRAGMA table_info({table})")]
        target_columns = set(_pg_columns(dst, table))
        columns = [c for c in source_columns if c in target_columns and c not in _PROCESS_STATE]
        expected = int(src.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        cursor = dst.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in src.execute(f"SELECT {', '.join(columns)} FROM {table}"):
                copy.write_row(row)
        copied = _count(dst, table)
        if copied != expected:
            raise MigrateError(f"{table}: {expected} rows in SQLite but {copied} copied; nothing committed")
        counts[table] = copied
        if table in _SERIAL:
            # New rows must get ids after the copied ones.
            dst.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false)"
                f" FROM {table}"
            )
    return counts


def run_migrate_db(source: Path, url: str, replace: bool) -> int:
    where = redact(url)
    try:
        copied = asyncio.run(migrate_database(source, url, replace=replace))
    except MigrateError as error:
        print(f"migrate-db: {error}", file=sys.stderr)
        return error.code
    except (psycopg.Error, sqlite3.Error, RuntimeError) as error:
        print(f"migrate-db: {database_error(where, str(error))}; nothing committed", file=sys.stderr)
        return 1
    total = sum(copied.counts.values())
    listed = ", ".join(f"{table} {n}" for table, n in copied.counts.items())
    print(f"copied {total} rows from {source} to {where} (counts verified): {listed}")
    return 0
