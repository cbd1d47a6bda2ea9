"""The SQLite connection, its single worker thread, and the one write path (migrations included).

Every write goes through `write_transaction`: BEGIN IMMEDIATE, the statements, COMMIT, and ROLLBACK on
any error. Outside it the connection is read-only (`PRAGMA query_only`), so a write that bypasses the
helper fails at once instead of slipping out in autocommit mode, half a change at a time."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, Self, TypeVar

import sqlite_utils

from bot.adapters.store.interface import Backend, Dialect, Params
from bot.adapters.store.migrations import HEAD
from bot.adapters.store.statements import compiled

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


CHECKPOINT_INTERVAL = 1.0
BUSY_TIMEOUT = 10.0
WRITER_THREAD = "sqlite-writer"
# A backstop only: normally the checkpointer keeps the log far below this many pages.
AUTOCHECKPOINT_PAGES = 16_384


class SqliteBackend(Backend):
    """One SQLite connection owned by one worker thread, which runs every repository call.

    A second connection on a thread of its own copies the write-ahead log back into the database
    every second. Left to SQLite, that copy happens inside whichever commit crosses the threshold,
    and that request waits for it (about 5 ms every 70 admissions at a million usage rows).
    """

    dialect: Dialect = "sqlite"
    exclusive = True

    def __init__(
        self, db: sqlite_utils.Database, executor: ThreadPoolExecutor, path: Path, owner: str
    ) -> None:
        self._db = db
        self._executor = executor
        self._closed = False
        self.owner = owner
        self._session = SqliteSession(self)
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        if str(path) != ":memory:":
            self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
            self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(path), name="sqlite-checkpoint")

    @classmethod
    async def open(cls, path: Path | str, owner: str, *, busy_timeout: float = BUSY_TIMEOUT) -> Self:
        """Open (creating and migrating) the database; a damaged file raises StoreCorruptError."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=WRITER_THREAD)
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, _connect, Path(path), busy_timeout)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor, Path(path), owner)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoint_task
        if self._checkpointer is not None:
            conn = self._checkpoint_conn
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(self._checkpointer, conn.close)
            self._checkpointer.shutdown(wait=True)
        await self.run_raw(self._close_connection)
        self._executor.shutdown(wait=True)

    def _close_connection(self) -> None:
        # A full checkpoint that empties the write-ahead log, so old page versions (with interaction
        # tokens since dropped) do not outlive the process in the -wal file.
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("final checkpoint failed: %s", exc)
        self._db.close()

    async def _checkpoint_loop(self, path: Path) -> None:
        assert self._checkpointer is not None
        loop = asyncio.get_running_loop()
        self._checkpoint_conn = await loop.run_in_executor(self._checkpointer, _checkpoint_connection, path)
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)
            try:
                await loop.run_in_executor(self._checkpointer, _checkpoint, self._checkpoint_conn)
            except sqlite3.Error as exc:
                log.warning("background checkpoint failed: %s", exc)

    async def run_raw(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn` on the writer thread (the only thread that may use the connection)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def run(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await self.run_raw(fn, self._session, *args, **kwargs)

    def write(self) -> contextlib.AbstractContextManager[Tx]:
        """The store's only way to write: one transaction, committed whole or not at all, on the
        writer thread (the only thread that may use the connection)."""
        if not threading.current_thread().name.startswith(WRITER_THREAD):
            raise RuntimeError("store writes run on the store's writer thread (through _run)")
        return write_transaction(self._db.conn)

    async def schema_version(self) -> str | None:
        return await self.run_raw(_revision, self._db.conn)


class SqliteSession:
    """The writer thread's view of the connection, handed to repository functions."""

    dialect: Dialect = "sqlite"
    exclusive = True

    def __init__(self, backend: SqliteBackend) -> None:
        self._backend = backend
        self._db = backend._db
        self.owner = backend.owner

    @property
    def lease(self) -> float:
        return self._backend.lease

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._db.conn.execute(compiled(sql, "sqlite"), params or {}).fetchall()]

    def row(self, sql: str, params: Params | None = None) -> tuple[Any, ...] | None:
        found = self._db.conn.execute(compiled(sql, "sqlite"), params or {}).fetchone()
        return None if found is None else tuple(found)

    def dicts(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        cursor = self._db.conn.execute(compiled(sql, "sqlite"), params or {})
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]

    def write(self) -> contextlib.AbstractContextManager[Tx]:
        return self._backend.write()

    def lock(self, tx: Tx, *key: object) -> None:
        return None  # BEGIN IMMEDIATE already holds the only write lock


class StoreCorruptError(RuntimeError):
    """The database file is damaged; the text says so in one line, fit for the operator."""


class Tx:
    """The only writable handle on the database. It exists only inside `write_transaction` and refuses
    to run anything once that transaction has ended."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn

    def execute(self, sql: str, params: Params | None = None) -> sqlite3.Cursor:
        if self._conn is None:
            raise RuntimeError("this write transaction has already ended")
        cursor = self._conn.execute(compiled(sql, "sqlite"), params or {})
        if after_statement is not None:
            after_statement()
        return cursor

    def insert(self, table: str, row: dict[str, Any]) -> int:
        """Insert one row and return its id."""
        cursor = self.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(f':{c}' for c in row)})", row
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> int:
        """Update columns of one row by id; returns how many rows changed (0 or 1)."""
        if not values:
            return 0
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        cursor = self.execute(
            f"UPDATE {table} SET {assignments} WHERE id = :row_id", {**values, "row_id": row_id}
        )
        return cursor.rowcount

    def dicts(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        cursor = self.execute(sql, params)
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]

    def _end(self) -> None:
        self._conn = None


# Called after every statement of a write transaction. Only the crash tests set it (to `os._exit` in a
# child process), to prove that a process dying between two statements leaves all or nothing behind.
after_statement: Callable[[], None] | None = None


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[Tx]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error, with the connection writable only meanwhile.

    IMMEDIATE takes the write lock before the first read, so what the transaction reads cannot change
    before it writes, even with another process on the file."""
    if conn.in_transaction:
        raise RuntimeError("write transactions do not nest")
    conn.execute("PRAGMA query_only = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        tx = Tx(conn)
        try:
            yield tx
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as exc:  # the original error matters more; SQLite rolls back anyway
                    log.warning("rollback failed: %s", exc)
            raise
        finally:
            tx._end()
    finally:
        conn.execute("PRAGMA query_only = ON")


def _connect(path: Path, busy_timeout: float) -> sqlite_utils.Database:
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    # The connection is created here and only ever used on this same worker thread. Autocommit mode
    # (isolation_level=None): transactions are opened explicitly by `write_transaction`, never implicitly.
    conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Deleted content (interaction tokens above all) is overwritten with zeros, not left in free space.
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
        _check_integrity(conn, path)
        conn.execute("PRAGMA query_only = ON")
        db = sqlite_utils.Database(conn)
        migrate(db)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise StoreCorruptError(
            f"the database file {path} is damaged or not a database ({exc}); restore it from a backup"
        ) from None
    except BaseException:
        conn.close()
        raise
    return db


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        raise StoreCorruptError(
            # SQLite's report may span lines; the operator's message is one line.
            f"the database file {path} is damaged ({' '.join(problems[0].split())}); restore it from a backup"
        )


def _checkpoint_connection(path: Path) -> sqlite3.Connection:
    # Created and used only on the checkpoint thread.
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 1000")
    return conn


def _checkpoint(conn: sqlite3.Connection) -> None:
    # PASSIVE never blocks the writer: it copies what it can and leaves the rest for next time.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def _after_step() -> None:
    if after_statement is not None:
        after_statement()


def _revision(conn: sqlite3.Connection) -> str | None:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone() is None:
        return None
    found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if found is None else str(found[0])


def migrate(db: sqlite_utils.Database) -> None:
    """Bring the schema to the newest revision, one revision per write transaction. A database already
    there (every start but the first after an upgrade) needs neither Alembic nor SQLAlchemy loaded."""
    if _revision(db.conn) == HEAD:
        return
    from bot.adapters.store.migrations.chain import upgrade_sqlite  # noqa: PLC0415

    upgrade_sqlite(db.conn, write_transaction, _after_step)
