"""Applying the migration chain: Alembic driven from code (no alembic.ini), on the connection the
backend already holds, after taking over the version marks that earlier versions of the bot left.

SQLite: one revision per write transaction, on the store's own connection and its one write path
(`sqlite_backend.write_transaction`), so a crash leaves every finished revision applied and none
half-way. PostgreSQL: the whole chain in one transaction under an advisory lock, so a second process
starting at the same moment waits, then finds the work done.

Earlier versions kept their own numbers: SQLite's `PRAGMA user_version` (1-10) and PostgreSQL's
`schema_version` table (1-5). Revisions 0001-0010 are those same schemas, so such a database is
stamped with its revision and upgraded from there. Afterwards the old marks are set past what those
versions know (user_version 11, schema_version 6): an older bot started on an upgraded database
refuses it instead of writing into a schema it does not understand.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import StaticPool

from bot.adapters.store.migrations import HEAD
from bot.adapters.store.schema import metadata

# An earlier version's schema number, and the revision that is the same schema.
SQLITE_LEGACY = {n: f"{n:04d}" for n in range(1, 11)}
POSTGRESQL_LEGACY = {1: "0006", 2: "0007", 3: "0008", 4: "0009", 5: "0010"}
# What the old marks are set to once the chain runs the database: past what any older bot knows.
SQLITE_FENCE = len(SQLITE_LEGACY) + 1
POSTGRESQL_FENCE = len(POSTGRESQL_LEGACY) + 1
# The advisory lock every starting process takes around its PostgreSQL migrations.
MIGRATION_LOCK = 0x1A6E_B07D


@functools.cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory(str(Path(__file__).parent))


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def chain() -> list[str]:
    """Every revision, oldest first."""
    return [script.revision for script in reversed(list(scripts().walk_revisions()))]


def current_revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _too_new(found: object, known: object) -> RuntimeError:
    return RuntimeError(
        f"the database is at schema version {found}, newer than this bot knows ({known});"
        " run a newer version of the bot"
    )


def _steps(current: str | None) -> list[str]:
    revisions = chain()
    if current is None:
        return revisions
    if current not in revisions:
        raise _too_new(current, HEAD)
    return revisions[revisions.index(current) + 1 :]


def _upgrade(conn: sa.Connection, target: str) -> None:
    """Apply the revisions up to `target`, inside the transaction the caller holds."""
    script = scripts()

    def revisions(rev: Any, context: Any) -> Any:
        return script._upgrade_revs(target, rev)

    with EnvironmentContext(_config(), script, fn=revisions, destination_rev=target) as env:
        env.configure(connection=conn, target_metadata=metadata)
        env.run_migrations()


# -- SQLite --------------------------------------------------------------------------------------------


class _Borrowed:
    """The store's sqlite3 connection as SQLAlchemy sees it while migrating: the store's write path
    owns BEGIN, COMMIT and ROLLBACK, so SQLAlchemy's own commit and rollback do nothing."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextlib.contextmanager
def _sqlalchemy_view(raw: sqlite3.Connection) -> Iterator[sa.Connection]:
    engine = sa.create_engine("sqlite://", creator=lambda: _Borrowed(raw), poolclass=StaticPool)
    try:
        with engine.connect() as conn:
            conn.begin()  # SQLAlchemy's bookkeeping only: Alembic then leaves transactions to us
            yield conn
    finally:
        engine.dispose()


def upgrade_sqlite(
    raw: sqlite3.Connection,
    write: Callable[[sqlite3.Connection], contextlib.AbstractContextManager[Any]],
    after_step: Callable[[], None],
) -> None:
    """Bring the store's SQLite connection to the head, one revision per `write` transaction."""
    legacy = int(raw.execute("PRAGMA user_version").fetchone()[0])
    with _sqlalchemy_view(raw) as conn:
        current = current_revision(conn)
        stamp = None
        if current is None and legacy:
            if legacy not in SQLITE_LEGACY:
                raise _too_new(legacy, len(SQLITE_LEGACY))
            current = stamp = SQLITE_LEGACY[legacy]
        for target in _steps(current):
            with write(raw):
                if stamp is not None:
                    MigrationContext.configure(conn).stamp(scripts(), stamp)
                    stamp = None
                _upgrade(conn, target)
                raw.execute(f"PRAGMA user_version = {SQLITE_FENCE}")
                after_step()


# -- PostgreSQL ----------------------------------------------------------------------------------------


def _postgresql_legacy(conn: sa.Connection) -> int:
    if conn.execute(sa.text("SELECT to_regclass('schema_version')")).scalar() is None:
        return 0
    return int(conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar() or 0)


def upgrade_postgresql(conn: sa.Connection, after_step: Callable[[], None]) -> None:
    """Bring the database to the head in the one transaction `conn` holds, under an advisory lock."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    current = current_revision(conn)
    if current is None:
        legacy = _postgresql_legacy(conn)
        if legacy:
            if legacy not in POSTGRESQL_LEGACY:
                raise _too_new(legacy, len(POSTGRESQL_LEGACY))
            current = POSTGRESQL_LEGACY[legacy]
            MigrationContext.configure(conn).stamp(scripts(), current)
    for target in _steps(current):
        _upgrade(conn, target)
        after_step()
    conn.execute(
        sa.text(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO schema_version (version, applied_at) VALUES (:version, extract(epoch FROM now()))"
            " ON CONFLICT DO NOTHING"
        ),
        {"version": POSTGRESQL_FENCE},
    )
