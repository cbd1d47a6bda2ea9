"""The store: schema migrations in place, WAL mode, and the database as the truth."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.adapters.store import SCHEMA_HEAD, Store
from bot.core.models import ImageRequest, JobStatus, Origin
from tests.helpers import posted_ids
from tests.legacy_fixtures import sqlite_legacy


def make_v1_database(path: Path) -> None:
    """A database exactly as the first released schema left it, with a row in it."""
    sqlite_legacy(path, 1, rows=False)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "INSERT INTO jobs (source, status, prompt, created_at, reference_urls, result_urls)"
        " VALUES ('discord', 'delivered', 'an old job', 1.0, '[]', '[\"https://x/1.png\"]')"
    )
    conn.close()


async def test_upgrades_an_old_database_without_losing_rows(db_path: Path) -> None:
    make_v1_database(db_path)
    store = await Store.open(db_path)
    try:
        assert await store.schema_version() == SCHEMA_HEAD
        old = await store.jobs.get(1)
        assert old is not None and old.prompt == "an old job" and old.status is JobStatus.DELIVERED
        await store.ops.set_meta("k", "v")
        assert await store.ops.get_meta("k") == "v"
    finally:
        await store.close()


async def test_refuses_a_database_from_a_newer_bot(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 15")  # past the last version before the migration chain
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        await Store.open(db_path)


async def test_wal_mode_and_claiming(db_path: Path) -> None:
    store = await Store.open(db_path)
    try:
        job = await store.jobs.create(
            ImageRequest("p", "1:1", ("https://r/1.png",)), Origin(source="s"), 10.0
        )
        await store.jobs.mark_running(job.id, "task", 11.0, 12.0)
        assert await store.jobs.claim_due("s", 11.5, 10, 60) == []
        [claimed] = await store.jobs.claim_due("s", 12.0, 10, 60)
        assert claimed.id == job.id and claimed.reference_urls == ["https://r/1.png"]
        # Leased: a second pass at the same moment gets nothing.
        assert await store.jobs.claim_due("s", 12.0, 10, 60) == []
        assert await store.jobs.claim_due("other", 100.0, 10, 60) == []
        await store.jobs.reset_leases("s", 13.0)
        assert await store.jobs.next_poll_time("s") == 13.0
    finally:
        await store.close()
    mode = sqlite3.connect(db_path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_history_is_keyset_paged_by_job_id(db_path: Path) -> None:
    store = await Store.open(db_path)
    try:
        origin = Origin(source="discord", guild_id=1, channel_id=2, user_id=3)
        for n in range(12):
            job = await store.jobs.create(ImageRequest(f"p{n}"), origin, float(n))
            await store.jobs.mark_running(job.id, f"t{n}", n + 0.5, n + 1.0)
            await store.jobs.mark_completed(job.id, ["https://x/1.png"], n + 0.8, None)
            # Every third image went to a DM without a message to link: not listed.
            message = None if n % 3 == 2 else 100 + n
            await store.jobs.mark_delivered(
                job.id, delivery="channel", result_message_id=message, now=n + 0.9
            )
        listed = [j for j in range(12, 0, -1) if (j - 1) % 3 != 2]
        # Requests of one image each: a page of requests is a page of these images.
        first = await store.jobs.delivered_requests(1, 3, 5)
        assert posted_ids(first) == listed[:5] and first.total == len(listed)
        second = await store.jobs.delivered_requests(1, 3, 5, older_than=listed[4])
        assert posted_ids(second) == listed[5:]
        back = await store.jobs.delivered_requests(1, 3, 5, newer_than=listed[5])
        assert posted_ids(back) == listed[:5]
        nothing = await store.jobs.delivered_requests(1, 4, 5)
        assert (nothing.groups, nothing.total) == ([], 0)
    finally:
        await store.close()
