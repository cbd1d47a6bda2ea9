"""`python -m bot backup PATH`: a consistent copy of the live database, with SQLite's online backup.

The copy is taken page by page through SQLite itself, so it is consistent even while the bot writes
(a plain file copy of a WAL database can miss the log or catch it half-written), and it needs no
`sqlite3` tool in the image. It is written like every operator output (bot/ops/output_file.py): never
onto the database or its companion files, through a temporary file beside the target, nothing left
behind on a failure."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from bot.ops.output_file import OutputRefused, database_files, replacing

PAGES_PER_STEP = 1024  # small steps let the bot's writes in between


class SourceError(Exception):
    """The database itself could not be read (locked, not a database, damaged)."""


def backup_database(source: Path, target: Path) -> tuple[int, Path]:
    """Copy `source` to `target`, check the copy, and return (pages copied, the resolved target).
    Raises OutputRefused (nothing written), SourceError (the source's fault), OSError or
    sqlite3.Error (the target's fault)."""
    # Read-only: a backup never creates or migrates the source.
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as error:
        raise SourceError(str(error)) from None
    try:
        with replacing(target, protected=database_files(source)) as (temporary, resolved):
            dst = sqlite3.connect(str(temporary))
            try:
                try:
                    src.backup(dst, pages=PAGES_PER_STEP)
                except sqlite3.OperationalError as error:
                    if "full" in str(error) or "disk" in str(error) or "readonly" in str(error):
                        raise  # the target's side
                    raise SourceError(str(error)) from None
                if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("the copy failed its integrity check")
                pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            finally:
                dst.close()
    finally:
        src.close()
    return pages, resolved


def run_backup(source: Path, target: Path) -> int:
    if not source.exists():
        print(f"backup: no database at {source}; set DATABASE_PATH", file=sys.stderr)
        return 1
    try:
        pages, resolved = backup_database(source, target)
    except OutputRefused as refusal:
        print(f"backup: {refusal}", file=sys.stderr)
        return 2
    except SourceError as error:
        print(f"backup: cannot read the database {source} ({error})", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"backup: cannot write {target} ({error.strerror or error})", file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        print(f"backup: cannot write {target} ({error})", file=sys.stderr)
        return 1
    size = resolved.stat().st_size
    shown = target if resolved == target.absolute() else f"{target} (→ {resolved})"
    print(f"backed up {source} to {shown} ({pages} pages, {size / 1024 / 1024:.1f} MB)")
    return 0
