"""What a database backend offers the repositories, so every repository body is written once.

A repository method is a plain function `fn(session, ...)`: it reads through the session and writes in
exactly one `session.write()` transaction. A backend runs such a function off the event loop with a
session of its own: SQLite on its one writer thread (the only connection), PostgreSQL on a worker
thread holding one pooled connection for the whole call. The SQL is written once, with named
`:parameters`, and compiled per dialect (`statements.compiled`).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from bot.adapters.store.statements import Dialect, Params

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Backend", "Cursor", "Dialect", "Params", "Session", "Tx"]


class Cursor(Protocol):
    """The part of a DB-API cursor the repositories use."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """The only writable handle; it exists only inside `Session.write()`."""

    def execute(self, sql: str, params: Params | None = None) -> Cursor: ...

    def insert(self, table: str, row: dict[str, Any]) -> int: ...

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> int: ...

    def dicts(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]: ...


class Session(Protocol):
    """One connection for the duration of one repository call."""

    dialect: Dialect
    # The id of this process's store: leases taken by this process carry it.
    owner: str
    # True when this process is the database's only user (SQLite): leases of earlier processes are
    # then void, because a process that is gone cannot be working on them.
    exclusive: bool
    # How long this process's leases on the jobs it works on last before they are renewed.
    lease: float

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]: ...

    def row(self, sql: str, params: Params | None = None) -> tuple[Any, ...] | None: ...

    def dicts(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]: ...

    def write(self) -> contextlib.AbstractContextManager[Tx]: ...

    def lock(self, tx: Tx, *key: object) -> None:
        """Serialise transactions on `key` until this one ends (PostgreSQL: a transaction-level
        advisory lock). A no-op on SQLite, where every write transaction holds the database lock."""
        ...


class Backend(abc.ABC):
    """A database the Store runs repository calls on."""

    dialect: Dialect
    owner: str
    exclusive: bool
    lease: float = 60.0  # set by the Store (JOB_LEASE_SECONDS)

    @abc.abstractmethod
    async def run(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run `fn(session, *args, **kwargs)` off the event loop."""

    async def run_leases(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """`run` for the lease loop's calls (renewals, take-overs), which must not queue behind the
        ordinary calls of a process that is behind: by default the same queue."""
        return await self.run(fn, *args, **kwargs)

    @abc.abstractmethod
    async def schema_version(self) -> str | None:
        """The Alembic revision the database is at (None: not yet created)."""

    @abc.abstractmethod
    async def close(self) -> None: ...
