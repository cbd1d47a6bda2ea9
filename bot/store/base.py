"""The connection, its single worker thread, and schema migrations."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, Self, TypeVar

import sqlite_utils

from bot.store.schema import MIGRATIONS

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


CHECKPOINT_INTERVAL = 1.0
# A backstop only: normally the checkpointer keeps the log far below this many pages.
AUTOCHECKPOINT_PAGES = 16_384


class StoreBase:
    """Async facade over one SQLite connection owned by one worker thread.

    A second connection on a thread of its own copies the write-ahead log back into the database
    every second. Left to SQLite, that copy happens inside whichever commit crosses the threshold,
    and that request waits for it (about 5 ms every 70 admissions at a million usage rows).
    """

    def __init__(self, db: sqlite_utils.Database, executor: ThreadPoolExecutor, path: Path) -> None:
        self._db = db
        self._executor = executor
        self._closed = False
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        if str(path) != ":memory:":
            self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
            self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(path), name="sqlite-checkpoint")

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path | str) -> Self:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, _connect, Path(path))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor, Path(path))

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
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)

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

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction that holds the write lock from its first statement (BEGIN IMMEDIATE), so
        what it reads cannot change before it writes, even with another process on the database."""
        with self._db.conn:  # commits on leaving, rolls back on an exception
            self._db.execute("BEGIN IMMEDIATE")
            yield

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """Insert one row inside the caller's transaction and return its id."""
        cursor = self._db.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def schema_version(self) -> int:
        return await self._run(_user_version, self._db)

    async def get_meta(self, key: str) -> str | None:
        return await self._run(self._get_meta, key)

    def _get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(self._set_meta, key, value)

    def _set_meta(self, key: str, value: str) -> None:
        with self._db.conn:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])


def _connect(path: Path) -> sqlite_utils.Database:
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    # The connection is created here and only ever used on this same worker thread.
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
    db = sqlite_utils.Database(conn)
    migrate(db)
    return db


def _checkpoint_connection(path: Path) -> sqlite3.Connection:
    # Created and used only on the checkpoint thread.
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 1000")
    return conn


def _checkpoint(conn: sqlite3.Connection) -> None:
    # PASSIVE never blocks the writer: it copies what it can and leaves the rest for next time.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def _user_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database) -> None:
    """Bring the schema to the newest version, one migration per transaction."""
    current = _user_version(db)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"the database is at schema version {current}, newer than this bot knows ({len(MIGRATIONS)}); "
            "run a newer version of the bot"
        )
    for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
        with db.conn:
            db.execute("BEGIN IMMEDIATE")
            step(db)
            db.execute(f"PRAGMA user_version = {version}")
