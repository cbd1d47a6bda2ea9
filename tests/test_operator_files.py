"""Files the operator names (`backup`, `export --out`): never written onto live data, written through
symlinks, special files refused, the target's faults blamed on the target, nothing left on a failure."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from bot.adapters.store import Store
from bot.core.models import ImageRequest, Origin
from tests.test_ops_commands import run

GUILD = "123456789012345678"
EXPORT = ("export", "--guild", GUILD, "--from", "2025-01-01", "--to", "2025-01-31")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A WAL database whose rows are still in its -wal file (a connection keeps it from checkpointing)."""
    path = tmp_path / "data" / "bot.db"
    path.parent.mkdir()

    async def fill() -> None:
        store = await Store.open(path)
        for n in range(3):
            await store.create_job(ImageRequest(f"prompt {n}"), Origin(source="test"), 1.0)
        await store.close()

    asyncio.run(fill())
    return path


def jobs_in(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


def only_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(("bot.db-",)))


def test_backup_and_export_refuse_the_database_and_its_companions(db: Path, tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(db)}
    holder = sqlite3.connect(db)  # keeps the -wal and -shm files in place
    holder.execute("SELECT 1").fetchone()
    link = tmp_path / "innocent.db"
    link.symlink_to(db)
    try:
        for target in (f"{db}-wal", f"{db}-shm", f"{db}-journal", str(link), "data/bot.db"):
            result = run("backup", target, env=env, cwd=tmp_path)
            assert result.returncode == 2, (target, result)
            assert "the database's own file" in result.stderr and len(result.stderr.splitlines()) == 1
            out = run(*EXPORT, "--out", target, env=env, cwd=tmp_path)
            assert out.returncode == 2 and "the database's own file" in out.stderr, (target, out)
            assert out.stderr.startswith("nothing exported: --out ")
        assert jobs_in(db) == 3
    finally:
        holder.close()
    assert only_files(db.parent) == ["bot.db"]


def test_backup_blames_the_target_for_the_targets_faults(db: Path, tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(db)}
    result = run("backup", "/proc/x.db", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("backup: cannot write /proc/x.db (") and str(db) not in result.stderr

    folder = tmp_path / "adir"
    folder.mkdir()
    refused = run("backup", str(folder), env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "is a folder" in refused.stderr
    assert list(folder.iterdir()) == [] and not (tmp_path / "adir.partial").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "data"]  # nothing left behind

    device = run("backup", "/dev/full", env=env, cwd=tmp_path)
    assert device.returncode == 2 and "not a regular file" in device.stderr


def test_outputs_are_written_through_symlinks_and_dash_is_standard_output(db: Path, tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(db)}
    real = tmp_path / "archive" / "real.db"
    real.parent.mkdir()
    real.write_bytes(b"an older backup")
    link = tmp_path / "latest.db"
    link.symlink_to(real)
    assert run("backup", str(link), env=env, cwd=tmp_path).returncode == 0
    assert only_files(real.parent) == ["real.db"]
    assert link.is_symlink() and jobs_in(real) == 3

    csv_link = tmp_path / "usage.csv"
    csv_target = tmp_path / "archive" / "usage-real.csv"
    csv_link.symlink_to(csv_target)
    written = run(*EXPORT, "--out", str(csv_link), env=env, cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert csv_link.is_symlink() and csv_target.read_text().startswith("id,created_at,")

    dash = run(*EXPORT, "--out", "-", env=env, cwd=tmp_path)
    assert dash.returncode == 0 and dash.stdout.startswith("id,created_at,")
    assert not (tmp_path / "-").exists()

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused = run(*EXPORT, "--out", str(fifo), env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "not a regular file" in refused.stderr
