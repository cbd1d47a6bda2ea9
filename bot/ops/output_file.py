"""Writing a file an operator named (`backup`, `export --out`, `imagine --out`, `animate --out`).

The same rules for every command: the path is resolved first (a symlink is written through, to the
file it names); a folder, a device, a FIFO or a socket is refused, and so is any path that resolves to
the database or its -wal, -shm or -journal file (writing there would destroy live data); an existing
file is replaced only when the command allows it. The bytes go to a temporary file beside the resolved
target, are flushed to disk, and are renamed into place: the target holds the old file or the whole new
one, never half of one, and a failure leaves nothing behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

DATABASE_COMPANIONS = ("", "-wal", "-shm", "-journal")
TEMPORARY_SUFFIX = ".tmp"


class OutputRefused(Exception):
    """The path cannot be written as asked: one line for the operator (exit 2, nothing was written)."""


def database_files(database: Path | None) -> list[Path]:
    """The SQLite database and the files SQLite keeps beside it: never an output."""
    if database is None:
        return []
    return [Path(os.path.realpath(f"{database}{suffix}")) for suffix in DATABASE_COMPANIONS]


def resolve_output(path: Path, *, protected: Sequence[Path] = (), overwrite: bool = True) -> Path:
    """The file `path` names once symlinks are followed, or OutputRefused saying why it cannot be used.
    Blocking (it reads the file system): call it in a thread from async code."""
    target = Path(os.path.realpath(path))
    shown = str(path)
    if target in protected:
        raise OutputRefused(f"{shown} is the database's own file ({target.name}); choose another path")
    try:
        info = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):  # a missing folder is made, or fails, later
        return target
    except OSError as error:
        raise OutputRefused(f"{shown} cannot be used ({error.strerror or error})") from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputRefused(f"{shown} is a folder; give a file name, e.g. {Path(shown) / 'file'}")
    if not stat.S_ISREG(info.st_mode):
        raise OutputRefused(f"{shown} is not a regular file (a device, a FIFO or a socket); choose a file")
    for guarded in protected:
        with contextlib.suppress(OSError):
            if os.path.samefile(target, guarded):  # a hard link to the database is the database
                raise OutputRefused(f"{shown} is the database's own file; choose another path")
    if not overwrite:
        raise OutputRefused(f"{shown} already exists; pass --force to replace it, or choose another name")
    return target


@contextlib.contextmanager
def replacing(
    path: Path, *, protected: Sequence[Path] = (), overwrite: bool = True
) -> Iterator[tuple[Path, Path]]:
    """Yields (temporary file, resolved target): write the temporary file, and on leaving the block it
    is flushed and renamed onto the target. On an error the temporary file is removed and the target
    is left as it was. Raises OutputRefused before anything is created, OSError while writing."""
    target = resolve_output(path, protected=protected, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX, dir=target.parent)
    # Locked while this process lives: a later write can tell our file from a killed writer's leftover.
    fcntl.flock(handle, fcntl.LOCK_EX)
    temporary = Path(name)
    try:
        # mkstemp makes the file private (0600); the result gets the mode a new file would get.
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        yield temporary, target
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    finally:
        os.close(handle)
    with contextlib.suppress(OSError):  # the rename itself on disk; not every file system allows it
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _remove_leftovers(target: Path) -> None:
    """Temporary files of this target that a killed writer left (no process holds their lock)."""
    for leftover in target.parent.glob(f".{target.name}.*{TEMPORARY_SUFFIX}"):
        try:
            handle = os.open(leftover, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            leftover.unlink(missing_ok=True)
        except OSError:
            pass  # another writer's, still at work
        finally:
            os.close(handle)


def write_output(path: Path, data: bytes, *, protected: Sequence[Path] = (), overwrite: bool = True) -> Path:
    """Write `data` to the file `path` names, by the rules above; returns the resolved target."""
    with replacing(path, protected=protected, overwrite=overwrite) as (temporary, target):
        temporary.write_bytes(data)
    return target


def writable_problem(path: Path, *, protected: Sequence[Path] = (), overwrite: bool = True) -> str | None:
    """None if `path` can be written by the rules above (its folders are created, like `mkdir -p`);
    else why not, in one line. Writes nothing that stays. Blocking: call it in a thread."""
    try:
        target = resolve_output(path, protected=protected, overwrite=overwrite)
    except OutputRefused as refusal:
        return str(refusal)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"{path}: the folder {target.parent} cannot be created ({error.strerror or error})"
    try:
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX, dir=target.parent)
    except OSError as error:
        return f"{path} cannot be written ({error.strerror or error})"
    os.close(handle)
    os.unlink(name)
    return None
