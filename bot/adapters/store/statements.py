"""How the store's SQL is written once for both backends: text with named parameters (`:name`), the
form SQLAlchemy's text() and SQLite's driver both take, compiled for psycopg by SQLAlchemy (`%(name)s`,
its `%` escaped) and cached, plus the few per-dialect pieces where the SQL really differs (SQLite's index
hints, PostgreSQL's row locks). Nothing rewrites SQL text by pattern at run time.

Text rather than Core expressions: the statements are hot (an admission is a handful of them) and a
compiled text is a dictionary look-up, where compiling an expression tree costs more than running
the statement on SQLite. The table definitions themselves are Core (`schema.py`). SQLAlchemy is
imported on the first PostgreSQL statement: a SQLite bot runs its statements as written and does
not carry it (15 MB) in memory."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Dialect = Literal["sqlite", "postgresql"]
Params = Mapping[str, Any]


def compiled(sql: str, dialect: Dialect) -> str:
    """`sql` (named `:parameters`) as the dialect's driver takes it."""
    return sql if dialect == "sqlite" else _for_psycopg(sql)


@functools.lru_cache(maxsize=2048)
def _for_psycopg(sql: str) -> str:
    import sqlalchemy as sa  # noqa: PLC0415 - only PostgreSQL needs it (see above)
    from sqlalchemy.dialects.postgresql import psycopg  # noqa: PLC0415

    return str(sa.text(sql).compile(dialect=psycopg.dialect()))  # type: ignore[no-untyped-call]


def listed(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """An IN list: the placeholders `:name0, :name1, …` and their values."""
    params = {f"{name}{n}": value for n, value in enumerate(values)}
    return ", ".join(f":{key}" for key in params), params


def indexed_by(dialect: Dialect, index: str) -> str:
    """SQLite's planner picks a worse index for some of these queries unless told; PostgreSQL has no
    hints and needs none."""
    return f" INDEXED BY {index}" if dialect == "sqlite" else ""


def skip_locked(dialect: Dialect) -> str:
    """Claims skip rows another PostgreSQL transaction is claiming; SQLite has one writer at a time."""
    return " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
