"""The bot's database: every SQL statement of the bot, on SQLite or PostgreSQL, reached by intent.

The rest of the bot speaks to the store's repositories (`store.jobs.claim_due(…)`,
`store.usage.admit(…)`, `store.settings.ban(…)`), so nothing outside this package knows which
database it is. Each repository is written once for both backends: `jobs` (jobs and their leases),
`deliveries` (each image's way to its requester),
`usage` (admission and the usage log), `personal` (personal use), `settings` (server settings and
moderation), `styles` (server styles and members' own settings) and `ops` (operator queries and
meta). Each repository function is one transaction; a `Backend` runs it off the event loop (SQLite:
on its one writer thread; PostgreSQL: on a pooled connection). The schema is `schema.py`, built by
the migration chain in `migrations/`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Protocol, Self

import psycopg

from bot.adapters.store import jobs_repo
from bot.adapters.store.deliveries_repo import Deliveries, Delivery
from bot.adapters.store.gallery_repo import Facets, Gallery, GalleryFilter, GalleryImage
from bot.adapters.store.interface import Backend
from bot.adapters.store.jobs_repo import Jobs
from bot.adapters.store.migrations import HEAD as SCHEMA_HEAD
from bot.adapters.store.overview_repo import Overview, QuotaOverview
from bot.adapters.store.personal_repo import Personal, PersonalBan, PersonalStats
from bot.adapters.store.postgres_backend import PostgresBackend
from bot.adapters.store.settings_repo import AdminEntry, Settings
from bot.adapters.store.sqlite_backend import SqliteBackend, StoreCorruptError, migrate
from bot.adapters.store.stats_repo import Statistics
from bot.adapters.store.styles_repo import Styles
from bot.adapters.store.usage_repo import Usage
from bot.core.redaction import redact
from bot.core.usage_records import EXPORT_COLUMNS, BanEntry, Stats, UsageSummary

# Any database failure: busy, full, damaged, connection lost, ...
StoreError: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)

HISTORY_COUNT_CAP = jobs_repo.HISTORY_COUNT_CAP
WORK_LEASE = jobs_repo.WORK_LEASE


class _Revealable(Protocol):
    def reveal(self) -> str: ...


class DatabaseSettings(Protocol):
    """The part of `bot.config.Settings` that says where the data lives."""

    @property
    def database_path(self) -> Path: ...

    @property
    def database_url(self) -> _Revealable | None: ...

    @property
    def job_lease(self) -> float: ...


def new_owner() -> str:
    """This process's lease owner id: readable in the database, and unique even across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def database_label(settings: DatabaseSettings) -> str:
    """Where the data lives, fit for messages and logs (a URL's password is left out)."""
    if settings.database_url:
        return redact(settings.database_url.reveal())
    return str(settings.database_path)


async def open_store(settings: DatabaseSettings) -> Store:
    """The store the settings name: PostgreSQL when DATABASE_URL is set, else the SQLite file at
    DATABASE_PATH. Every entry point (the bot, the terminal commands) opens it through here."""
    if settings.database_url:
        return await Store.open_url(settings.database_url.reveal(), lease=settings.job_lease)
    return await Store.open(settings.database_path, lease=settings.job_lease)


class Store:
    """The bot's database: its repositories, and its life cycle (opened once, closed once)."""

    # A database that failed for now (busy, full, connection lost): what the runner retries.
    errors: tuple[type[Exception], ...] = StoreError

    def __init__(self, backend: Backend, lease: float = WORK_LEASE) -> None:
        self._backend = backend
        backend.lease = lease
        self._closed = False
        self.jobs = Jobs(backend)
        self.deliveries = Deliveries(backend)
        self.usage = Usage(backend)
        self.personal = Personal(backend)
        self.settings = Settings(backend)
        self.styles = Styles(backend)
        self.ops = Overview(backend)
        self.gallery = Gallery(backend)
        self.stats = Statistics(backend)

    @classmethod
    async def open(
        cls, path: Path | str, *, busy_timeout: float | None = None, lease: float = WORK_LEASE
    ) -> Self:
        """Open (creating and migrating) the SQLite database at `path`."""
        extra: dict[str, Any] = {} if busy_timeout is None else {"busy_timeout": busy_timeout}
        return cls(await SqliteBackend.open(path, new_owner(), **extra), lease)

    @classmethod
    async def open_url(cls, url: str, *, pool_size: int = 8, lease: float = WORK_LEASE) -> Self:
        """Open (creating and migrating) the PostgreSQL database at `url`. `lease`: how long this
        process holds a job it works on between renewals (JOB_LEASE_SECONDS)."""
        return cls(await PostgresBackend.open(url, new_owner(), pool_size=pool_size), lease)

    @property
    def owner(self) -> str:
        """The id this process's leases carry."""
        return self._backend.owner

    @property
    def lease(self) -> float:
        """How long this process's leases on jobs last between renewals."""
        return self._backend.lease

    @property
    def exclusive(self) -> bool:
        """True when this process is the database's only user (SQLite): no other process takes jobs
        over, so leases need no renewal."""
        return self._backend.exclusive

    @property
    def dialect(self) -> str:
        return self._backend.dialect

    @property
    def backend(self) -> Backend:
        return self._backend

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._backend.exclusive:
            # Another process may take this one's jobs at once instead of after their leases.
            with contextlib.suppress(*StoreError):  # if not, the leases expire by themselves
                await self.jobs.release_leases(time.time())
        await self._backend.close()

    async def schema_version(self) -> str | None:
        """The migration chain's revision the database is at."""
        return await self._backend.schema_version()

    # The SQLite backend's writer thread and connection, for tests of the write path only.
    async def _run(self, fn: Any, *args: Any) -> Any:
        assert isinstance(self._backend, SqliteBackend)
        return await self._backend.run_raw(fn, *args)

    @property
    def _db(self) -> Any:
        assert isinstance(self._backend, SqliteBackend)
        return self._backend._db

    def _write(self) -> Any:
        assert isinstance(self._backend, SqliteBackend)
        return self._backend.write()


__all__ = [
    "EXPORT_COLUMNS",
    "HISTORY_COUNT_CAP",
    "SCHEMA_HEAD",
    "WORK_LEASE",
    "AdminEntry",
    "BanEntry",
    "Delivery",
    "Facets",
    "GalleryFilter",
    "GalleryImage",
    "PersonalBan",
    "PersonalStats",
    "QuotaOverview",
    "Stats",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "UsageSummary",
    "database_label",
    "migrate",
    "open_store",
]
