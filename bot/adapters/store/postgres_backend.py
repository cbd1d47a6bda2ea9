"""The PostgreSQL backend: a psycopg 3 connection pool created once, each repository call run on a
worker thread with one pooled connection, and the schema migrated at start-up under an advisory lock.

Repository SQL is written with `?` placeholders in the subset both databases share; this module
translates it (placeholders, SQLite's index hints). Connections are read-only outside `write()`
(`default_transaction_read_only`), as SQLite's are (`query_only`), so a write that bypasses the one
write path fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from bot.adapters.store import sqlite_backend as base
from bot.adapters.store.interface import Backend, Dialect
from bot.adapters.store.pg_schema import PG_MIGRATIONS
from bot.core.redaction import database_answer, redact

log = logging.getLogger(__name__)

R = TypeVar("R")

# The advisory lock every starting process takes around its migrations.
MIGRATION_LOCK = 0x1A6E_B07D
_INDEX_HINT = re.compile(r"\s+INDEXED BY \w+", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite-flavoured repository SQL to PostgreSQL: no index hints, `%s` placeholders."""
    return _INDEX_HINT.sub("", sql).replace("%", "%%").replace("?", "%s")


def _params(params: Sequence[Any]) -> list[Any]:
    # Flags are INTEGER columns, as in SQLite; PostgreSQL will not store a boolean in one.
    return [int(p) if isinstance(p, bool) else p for p in params]


def lock_key(*key: object) -> int:
    """A stable signed 64-bit advisory-lock key for any tuple of names and ids."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PgTx:
    """The writable handle inside one PostgreSQL transaction; dead once it has ended."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn: psycopg.Connection[Any] | None = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        if self._conn is None:
            raise RuntimeError("this write transaction has already ended")
        cursor = self._conn.execute(translate(sql), _params(params))
        if base.after_statement is not None:
            base.after_statement()
        return cursor

    def insert(self, table: str, row: dict[str, Any]) -> int:
        cursor = self.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)}) RETURNING id",
            list(row.values()),
        )
        found = cursor.fetchone()
        assert found is not None
        return int(found[0])

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> int:
        if not values:
            return 0
        assignments = ", ".join(f"{column} = ?" for column in values)
        return self.execute(
            f"UPDATE {table} SET {assignments} WHERE id = ?", [*values.values(), row_id]
        ).rowcount

    def dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.execute(sql, params)
        columns = [c.name for c in cursor.description or ()]
        return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]

    def _end(self) -> None:
        self._conn = None


class PgSession:
    dialect: Dialect = "postgresql"
    exclusive = False

    def __init__(self, conn: psycopg.Connection[Any], owner: str, lease: float) -> None:
        self._conn = conn
        self.owner = owner
        self.lease = lease

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._conn.execute(translate(sql), _params(params)).fetchall()]

    def row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        found = self._conn.execute(translate(sql), _params(params)).fetchone()
        return None if found is None else tuple(found)

    def dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._conn.cursor(row_factory=dict_row) as cursor:
            return list(cursor.execute(translate(sql), _params(params)).fetchall())

    @contextlib.contextmanager
    def write(self) -> Iterator[PgTx]:
        conn = self._conn
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise RuntimeError("write transactions do not nest")
        conn.execute("BEGIN READ WRITE")
        tx = PgTx(conn)
        try:
            yield tx
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error as exc:  # the original error matters more; the server rolls back anyway
                log.warning("rollback failed: %s", exc)
            raise
        finally:
            tx._end()

    def lock(self, tx: Any, *key: object) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(?)", [lock_key(*key)])


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET default_transaction_read_only = on")


class PostgresBackend(Backend):
    dialect: Dialect = "postgresql"
    exclusive = False

    def __init__(self, pool: ConnectionPool[Any], executor: ThreadPoolExecutor, owner: str) -> None:
        self._pool = pool
        self._executor = executor
        self.owner = owner
        self._closed = False

    @classmethod
    async def open(cls, url: str, owner: str, *, pool_size: int = 8) -> Self:
        executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="pg-store")
        loop = asyncio.get_running_loop()
        try:
            pool = await loop.run_in_executor(executor, _open_pool, url, pool_size)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(pool, executor, owner)

    def _call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        with self._pool.connection() as conn:
            return fn(PgSession(conn, self.owner, self.lease), *args, **kwargs)

    async def run(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._call, fn, *args, **kwargs))

    async def schema_version(self) -> int:
        return await self.run(lambda s: _version(s._conn))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._pool.close)
        self._executor.shutdown(wait=True)


def _open_pool(url: str, size: int) -> ConnectionPool[Any]:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate_pg(conn)
    except psycopg.OperationalError as exc:
        # One line: the address once, then what the server (or the system) answered.
        raise psycopg.OperationalError(
            f"cannot connect to the PostgreSQL database at {redact(url)}: {database_answer(str(exc))}"
        ) from None
    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True},
        configure=_configure,
        open=False,
        name="imagine-bot",
    )
    pool.open(wait=True, timeout=30.0)
    return pool


def _version(conn: psycopg.Connection[Any]) -> int:
    found = conn.execute("SELECT to_regclass('schema_version')").fetchone()
    if found is None or found[0] is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0) if row else 0


def migrate_pg(conn: psycopg.Connection[Any]) -> None:
    """Bring the schema to the newest version in one transaction, under an advisory lock: a second
    process starting at the same moment waits, then finds the work done."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)"
        )
        current = _version(conn)
        if current > len(PG_MIGRATIONS):
            raise RuntimeError(
                f"the database is at schema version {current}, newer than this bot knows "
                f"({len(PG_MIGRATIONS)}); run a newer version of the bot"
            )
        for version, statements in enumerate(PG_MIGRATIONS[current:], start=current + 1):
            for statement in statements:
                conn.execute(statement)
                if base.after_statement is not None:
                    base.after_statement()
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (%s, extract(epoch FROM now()))",
                [version],
            )
