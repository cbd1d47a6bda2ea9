"""`python -m bot backup PATH`: a consistent copy of the live database, with SQLite's online backup.

The copy is taken page by page through SQLite itself, so it is consistent even while the bot writes
(a plain file copy of a WAL database can miss the log or catch it half-written), and it needs no
`sqlite3` tool in the image."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from pathlib import Path

PAGES_PER_STEP = 1024  # small steps let the bot's writes in between


def backup_database(source: Path, target: Path) -> int:
    """Write the backup to a temporary file next to `target`, check it, then move it into place.
    Returns the number of pages copied. Raises OSError or sqlite3.Error."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    # Read-only: a backup never creates or migrates the source.
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    try:
        dst = sqlite3.connect(str(partial))
        try:
            src.backup(dst, pages=PAGES_PER_STEP)
            if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("the copy failed its integrity check")
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    finally:
        src.close()
    os.replace(partial, target)
    return pages


def run_backup(source: Path, target: Path) -> int:
    if not source.exists():
        print(f"backup: no database at {source}; set DATABASE_PATH", file=sys.stderr)
        return 1
    if target.resolve() == source.resolve():
        print("backup: the backup path is the database itself; choose another file", file=sys.stderr)
        return 2
    try:
        pages = backup_database(source, target)
    except OSError as error:
        print(f"backup: cannot write {target} ({error.strerror or error})", file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        print(f"backup: cannot copy {source} ({error})", file=sys.stderr)
        return 1
    size = target.stat().st_size
    print(f"backed up {source} to {target} ({pages} pages, {size / 1024 / 1024:.1f} MB)")
    return 0
