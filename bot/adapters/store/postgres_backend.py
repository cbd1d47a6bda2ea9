"""The PostgreSQL backend: a psycopg 3 connection pool created once, each repository call run on a
worker thread with one pooled connection, and the schema migrated at start-up under an advisory lock.

Repository SQL is written once with named parameters and compiled for psycopg by SQLAlchemy
(`statements.compiled`). Connections are read-only outside `write()`
(`default_transaction_read_only`), as SQLite's are (`query_only`), so a write that bypasses the one
write path fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Self, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from bot.adapters.store import sqlite_backend as base
from bot.adapters.store.interface import Backend, Dialect, Params
from bot.adapters.store.migrations import HEAD
from bot.adapters.store.statements import compiled

if TYPE_CHECKING:
    import sqlalchemy as sa
from bot.core.redaction import database_answer, redact

log = logging.getLogger(__name__)

R = TypeVar("R")


def _params(params: Params | None) -> dict[str, Any]:
    # Flags are INTEGER columns, as in SQLite; PostgreSQL will not store a boolean in one.
    return {k: int(v) if isinstance(v, bool) else v for k, v in (params or {}).items()}


def _sql(sql: str) -> str:
    return compiled(sql, "postgresql")


def lock_key(*key: object) -> int:
    """A stable signed 64-bit advisory-lock key for any tuple of names and ids."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PgTx:
    """The writable handle inside one PostgreSQL transaction; dead once it has ended."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn: psycopg.Connection[Any] | None = conn

    def execute(self, sql: str, params: Params | None = None) -> psycopg.Cursor[Any]:
        if self._conn is None:
            raise RuntimeError("this write transaction has already ended")
        cursor = self._conn.execute(_sql(sql), _params(params))
        if base.after_statement is not None:
            base.after_statement()
        return cursor

    def insert(self, table: str, row: dict[str, Any]) -> int:
        cursor = self.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(f':{c}' for c in row)}) RETURNING id",
            row,
        )
        found = cursor.fetchone()
        assert found is not None
        return int(found[0])

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> int:
        if not values:
            return 0
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        return self.execute(
            f"UPDATE {table} SET {assignments} WHERE id = :row_id", {**values, "row_id": row_id}
        ).rowcount

    def dicts(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
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

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._conn.execute(_sql(sql), _params(params)).fetchall()]

    def row(self, sql: str, params: Params | None = None) -> tuple[Any, ...] | None:
        found = self._conn.execute(_sql(sql), _params(params)).fetchone()
        return None if found is None else tuple(found)

    def dicts(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        with self._conn.cursor(row_factory=dict_row) as cursor:
            return list(cursor.execute(_sql(sql), _params(params)).fetchall())

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
        tx.execute("SELECT pg_advisory_xact_lock(:key)", {"key": lock_key(*key)})


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET default_transaction_read_only = on")


class PostgresBackend(Backend):
    dialect: Dialect = "postgresql"
    exclusive = False

    def __init__(self, pool: ConnectionPool[Any], executor: ThreadPoolExecutor, owner: str) -> None:
        self._pool = pool
        self._executor = executor
        # The lease loop's own thread (and connection: the pool holds one more than the threads). A
        # process that is behind queues hundreds of calls on `_executor`; a renewal or a take-over
        # waiting behind them would let its leases lapse, or leave a dead process's jobs waiting
        # (python -m bench --only capacity, 10,000 in flight).
        self._lease_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-store-leases")
        self.owner = owner
        self._closed = False

    @classmethod
    async def open(cls, url: str, owner: str, *, pool_size: int = 8) -> Self:
        executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="pg-store")
        loop = asyncio.get_running_loop()
        try:
            pool = await loop.run_in_executor(executor, _open_pool, url, pool_size + 1)
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

    async def run_leases(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, fn, *args, **kwargs)
        return await loop.run_in_executor(self._lease_executor, call)

    async def schema_version(self) -> str | None:
        return await self.run(lambda s: _revision(s._conn))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lease_executor.shutdown(wait=True)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._pool.close)
        self._executor.shutdown(wait=True)


def _open_pool(url: str, size: int) -> ConnectionPool[Any]:
    try:
        with psycopg.connect(url) as conn:  # not autocommit: the migrations are one transaction
            if _revision(conn) != HEAD:  # else neither Alembic nor SQLAlchemy need loading
                _with_sqlalchemy(conn, _migrate)
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


def _revision(conn: psycopg.Connection[Any]) -> str | None:
    found = conn.execute("SELECT to_regclass('alembic_version')").fetchone()
    if found is None or found[0] is None:
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def _migrate(conn: sa.Connection) -> None:
    from bot.adapters.store.migrations.chain import upgrade_postgresql  # noqa: PLC0415

    with conn.begin():
        upgrade_postgresql(conn, _after_step)


def _after_step() -> None:
    if base.after_statement is not None:
        base.after_statement()


def _with_sqlalchemy(raw: psycopg.Connection[Any], fn: Callable[[sa.Connection], R]) -> R:
    """`fn` given SQLAlchemy's view of a psycopg connection this module holds (for Alembic). Errors
    come out as psycopg's own, as from every other statement of the store."""
    import sqlalchemy as sa  # noqa: PLC0415 - only a migration needs it

    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: raw, poolclass=sa.pool.StaticPool)
    try:
        with engine.connect() as conn:
            return fn(conn)
    except sa.exc.DBAPIError as exc:
        if isinstance(exc.orig, psycopg.Error):
            raise exc.orig from None
        raise
    finally:
        engine.dispose()
