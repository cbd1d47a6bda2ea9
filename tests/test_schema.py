"""One schema: the migration chain builds `schema.metadata` on SQLite and PostgreSQL alike, and takes
over every database an earlier version of the bot wrote (SQLite 0-9, PostgreSQL 1-4) with its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.adapters.store import SCHEMA_HEAD, Store
from bot.adapters.store.gallery_repo import BACKFILL_KEY
from bot.adapters.store.migrations.chain import POSTGRESQL_FENCE, SQLITE_FENCE, chain
from bot.adapters.store.schema import metadata, name_key
from bot.core.policy.styles import Style
from tests.legacy_fixtures import POSTGRESQL_VERSIONS, SQLITE_VERSIONS, postgresql_legacy, sqlite_legacy

# Version marks kept beside the chain's own table (they fence off older bots); not part of the schema.
BOOKKEEPING = {"alembic_version", "schema_version"}
# Renamed by revision 0010 (one case folding): the later of two names that fold alike.
RENAMED = {"éclair": "éclair (2)", "Straße": "Straße (2)"}


def sqlite_engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{path}")


def pg_engine(url: str) -> sa.Engine:
    return sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url))


def rows(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, by table, in key order."""
    found: dict[str, list[dict[str, Any]]] = {}
    inspector = sa.inspect(engine)
    with engine.connect() as conn:
        for table in inspector.get_table_names():
            if table in BOOKKEEPING:
                continue
            key = inspector.get_pk_constraint(table)["constrained_columns"]
            result = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {', '.join(key)}"))
            found[table] = [dict(row._mapping) for row in result]
    return found


def differences(engine: sa.Engine) -> list[Any]:
    """What Alembic's autogenerate finds between the database and `schema.metadata`."""

    def include(name: str | None, kind: str, parent: Any) -> bool:
        return not (kind == "table" and name in BOOKKEEPING)

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include, "compare_type": True})
        found = compare_metadata(context, metadata)
    # SQLite reports a composite primary key's columns as nullable (they never hold NULL: the
    # store writes them all); PostgreSQL makes them NOT NULL. Nothing else may differ.
    return [d for d in found if not _pk_nullable(d)]


def _pk_nullable(diff: Any) -> bool:
    if not isinstance(diff, list) or len(diff) != 1 or diff[0][0] != "modify_nullable":
        return False
    _, _, table, column, *_ = diff[0]
    return bool(metadata.tables[table].c[column].primary_key)


def assert_rows_kept(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> None:
    # The gallery's revision leaves one meta row more: where its prompt-word backfill starts (the
    # newest job), and only when there are jobs to index.
    backfill = [row for row in after.get("meta", []) if row["key"] == BACKFILL_KEY]
    newest = max((int(job["id"]) for job in before.get("jobs", [])), default=None)
    assert [row["value"] for row in backfill] == ([] if newest is None else [str(newest)])
    after = after | {"meta": [row for row in after.get("meta", []) if row["key"] != BACKFILL_KEY]}
    for table, old_rows in before.items():
        new_rows = after[table]
        assert len(new_rows) == len(old_rows), table
        for old, new in zip(old_rows, new_rows, strict=True):
            expected = dict(old)
            if table == "styles":
                expected["name"] = RENAMED.get(old["name"], old["name"])
                assert new["name_key"] == name_key(expected["name"])
            assert {column: new[column] for column in old} == expected, table


@pytest.mark.parametrize("version", SQLITE_VERSIONS)
async def test_every_sqlite_database_an_earlier_version_wrote_is_taken_over(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "bot.db"
    sqlite_legacy(path, version)
    before = rows(sqlite_engine(path))
    store = await Store.open(path)
    try:
        assert await store.schema_version() == SCHEMA_HEAD
    finally:
        await store.close()
    engine = sqlite_engine(path)
    assert_rows_kept(before, rows(engine))
    assert differences(engine) == []
    # An older bot started on it now refuses it ("newer than this bot knows").
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SQLITE_FENCE
    conn.close()


@pytest.mark.parametrize("version", POSTGRESQL_VERSIONS)
async def test_every_postgresql_database_an_earlier_version_wrote_is_taken_over(
    pg_url: str, version: int
) -> None:
    postgresql_legacy(pg_url, version)
    before = rows(pg_engine(pg_url))
    store = await Store.open_url(pg_url, pool_size=1)
    try:
        assert await store.schema_version() == SCHEMA_HEAD
    finally:
        await store.close()
    engine = pg_engine(pg_url)
    assert_rows_kept(before, rows(engine))
    assert differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar() == POSTGRESQL_FENCE


async def test_a_new_database_is_the_schema_on_both_backends(tmp_path: Path, pg_url: str) -> None:
    for store in (await Store.open(tmp_path / "bot.db"), await Store.open_url(pg_url, pool_size=1)):
        assert await store.schema_version() == SCHEMA_HEAD == chain()[-1]
        await store.close()
    assert differences(sqlite_engine(tmp_path / "bot.db")) == []
    assert differences(pg_engine(pg_url)) == []


def _affinity(column: dict[str, Any]) -> str:
    python = column["type"].python_type
    return {int: "integer", float: "real", str: "text"}[python]


def _default(column: dict[str, Any]) -> str | None:
    default = column["default"]
    if default is None or "nextval(" in str(default):  # PostgreSQL's serial ids: SQLite's rowid
        return None
    return str(default).removesuffix("::text").strip("'")  # PostgreSQL types a text default


def _where(index: dict[str, Any]) -> str | None:
    options = index.get("dialect_options", {})
    where = options.get("sqlite_where", options.get("postgresql_where"))
    if where is None:
        return None
    text = str(where).strip("()").replace("::text", "")
    return " ".join(text.replace("(", "").replace(")", "").split())


def described(engine: sa.Engine) -> dict[str, Any]:
    """Tables as both backends can be compared: every column's name, kind (integer, real, text),
    nullability, default and key, and every index's columns, uniqueness and condition."""
    inspector = sa.inspect(engine)
    tables: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - BOOKKEEPING):
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        tables[table] = {
            "columns": [
                (c["name"], _affinity(c), c["nullable"] or c["name"] in key, _default(c))
                for c in inspector.get_columns(table)
            ],
            "key": key,
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]), _where(i))
                for i in inspector.get_indexes(table)
            ),
        }
    return tables


async def test_sqlite_and_postgresql_schemas_match_column_by_column_and_index_by_index(
    tmp_path: Path, pg_url: str
) -> None:
    """A new SQLite database, one taken over from SQLite version 1, and a PostgreSQL database taken over
    from its version 1: the same tables, columns, keys and indexes."""
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    sqlite_legacy(old, 1)
    postgresql_legacy(pg_url, 1)
    for store in (await Store.open(fresh), await Store.open(old), await Store.open_url(pg_url, pool_size=1)):
        await store.close()
    postgresql = described(pg_engine(pg_url))
    assert set(postgresql) == set(metadata.tables)
    for path in (fresh, old):
        sqlite = described(sqlite_engine(path))
        assert list(sqlite) == list(postgresql)
        for table in postgresql:
            assert sqlite[table]["columns"] == postgresql[table]["columns"], table
            assert sqlite[table]["key"] == postgresql[table]["key"], table
            assert sqlite[table]["indexes"] == postgresql[table]["indexes"], table


async def test_style_names_fold_alike_on_both_backends(any_store: Store) -> None:
    """`ÉCLAIR` and `éclair` are one style on both backends (SQLite's lower() kept them apart)."""
    assert await any_store.styles.add(100, Style("ÉCLAIR", "bright"), 9, 1.0) is False
    assert await any_store.styles.add(100, Style("éclair", "brighter"), 9, 2.0) is True
    assert await any_store.styles.add(100, Style("STRASSE", "street"), 9, 3.0) is False
    assert await any_store.styles.add(100, Style("Straße", "road"), 9, 4.0) is True
    listed = [(s.name, s.text) for s in await any_store.styles.all(100)]
    assert listed == [("Straße", "road"), ("éclair", "brighter")]
    found = await any_store.styles.get(100, "ÉCLAIR")
    assert found is not None and found.text == "brighter"


def test_a_sqlite_bot_at_the_head_loads_neither_alembic_nor_sqlalchemy(tmp_path: Path) -> None:
    """Memory and start-up stay as they were: only a migration (or PostgreSQL) loads them."""
    import subprocess
    import sys

    script = (
        "import asyncio, sys\n"
        "from bot.adapters.store import Store\n"
        "async def main():\n"
        f"    store = await Store.open({str(tmp_path / 'bot.db')!r})\n"
        "    await store.jobs.running_count('discord')\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
        "print('sqlalchemy' in sys.modules, 'alembic' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    run = [sys.executable, "-c", script]
    first = subprocess.run(run, cwd=root, capture_output=True, text=True, timeout=60, check=True)
    assert first.stdout.split() == ["True", "True"]  # the new database was built by the chain
    again = subprocess.run(run, cwd=root, capture_output=True, text=True, timeout=60, check=True)
    assert again.stdout.split() == ["False", "False"]
