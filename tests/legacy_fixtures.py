"""Databases as earlier versions of the bot left them: SQLite schema versions 0-10 and PostgreSQL 1-5.

Saved once from the old migration lists (`sqlite_schema.MIGRATIONS`, `pg_schema.PG_MIGRATIONS`) before
the one migration chain replaced them, with two rows in every table (snowflake-sized ids, non-ASCII
text), as SQL under tests/fixtures/legacy/."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "legacy"
SQLITE_VERSIONS = range(11)
POSTGRESQL_VERSIONS = range(1, 6)


def sqlite_legacy(path: Path, version: int, *, rows: bool = True) -> None:
    """Write the SQLite database of schema `version` at `path` (with its rows, or empty tables)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript((FIXTURES / f"sqlite_v{version}.sql").read_text())
        if not rows:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                conn.execute(f"DELETE FROM {table}")
    finally:
        conn.close()


def postgresql_legacy(url: str, version: int) -> None:
    """Replay the PostgreSQL database of schema `version` into the (empty) database at `url`."""
    with psycopg.connect(url) as conn:
        conn.execute((FIXTURES / f"postgresql_v{version}.sql").read_text())  # type: ignore[arg-type]


def sqlite_at_revision(path: Path, revision: str) -> None:
    """A new SQLite database built by the migration chain up to `revision` (inclusive), as the bot of
    that revision left it: for tests of what a later revision does to an existing database."""
    from bot.adapters.store.migrations import chain

    revisions = chain.chain()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        with chain._sqlalchemy_view(conn) as view:
            for target in revisions[: revisions.index(revision) + 1]:
                conn.execute("BEGIN")
                chain._upgrade(view, target)
                conn.execute("COMMIT")
        conn.execute(f"PRAGMA user_version = {chain.SQLITE_FENCE}")
    finally:
        conn.close()
