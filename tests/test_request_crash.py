"""A process dies with some images of a request in its message and some still rendering: after the
restart each image is in the message exactly once, and the rest finish there.

A real bot process (tests/request_crash_child.py) dies (`os._exit`) once Discord has taken an image of
the request and before it was recorded: either the post that created the request's message, or an
edit that added an image to it. The next process finds the image where it is (by its file name in the
message), records it instead of sending it again, and adds the images still rendering to the same
message."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.adapters.store import Store
from bot.core.models import ImageRequest
from sandbox.server import Sandbox, SandboxConfig
from testing.fake_discord import FakeDiscord, running_fake
from tests.helpers import wait_until
from tests.request_crash_child import CRASHED
from tests.request_helpers import channel_origin, write_request
from tests.test_operations import API_KEY, TOKEN, bot_process, wait_healthy

FILE = re.compile(r"imagine-(\d+)-\d+\.")


@pytest.fixture
async def keyed_sandbox() -> AsyncIterator[Sandbox]:
    server = Sandbox(SandboxConfig(duration=0.3, seed=5, api_key=API_KEY))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(conn.execute(sql).fetchall())


def files_sent(fake: FakeDiscord) -> collections.Counter[int]:
    """How many times each job's image was uploaded to Discord, in any call."""
    sent: collections.Counter[int] = collections.Counter()
    for request in fake.requests:
        for upload in request.files:
            if match := FILE.match(upload.filename):
                sent[int(match[1])] += 1
    return sent


@pytest.mark.parametrize("crash_at", ["create", "edit"])
@pytest.mark.timeout(90)
async def test_a_restart_leaves_each_image_once_in_the_message_and_finishes_the_rest(
    keyed_sandbox: Sandbox, tmp_path: Path, crash_at: str
) -> None:
    db = tmp_path / "bot.db"
    # Images 1 and 2 come quickly, 3 and 4 are still rendering when the process dies.
    for seconds in (0.2, 0.6, 4.0, 4.0):
        keyed_sandbox.force_next(duration=seconds)
    async with running_fake(token=TOKEN) as fake:
        store = await Store.open(db)
        try:
            jobs = await write_request(store, ImageRequest("four after a crash"), channel_origin(fake), 4)
        finally:
            await store.close()
        ids = [job.id for job in jobs]
        async with bot_process(
            fake, keyed_sandbox, db, module="tests.request_crash_child", CRASH_AT=crash_at
        ) as victim:
            assert await victim.wait(60) == CRASHED, victim.stderr.decode()[-3000:]
        delivered = rows(db, "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NOT NULL")
        assert delivered == [(0 if crash_at == "create" else 1,)]
        assert rows(
            db, f"SELECT COUNT(*) FROM jobs WHERE status = 'running' AND id IN ({ids[2]}, {ids[3]})"
        ) == [(2,)]

        async with bot_process(fake, keyed_sandbox, db) as again:
            await wait_healthy(again)

            async def all_delivered() -> bool:
                counted = await asyncio.to_thread(
                    rows, db, "SELECT COUNT(*) FROM jobs WHERE status = 'delivered'"
                )
                return counted == [(4,)]

            await wait_until(all_delivered, "the four images to be delivered", timeout=40, interval=0.1)
            await fake.wait_idle()

    posts = [
        r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{fake.channel_id}/messages"
    ]
    assert len(posts) == 1  # the request's message was made once, and adopted after the crash
    [(message_id,)] = rows(db, "SELECT DISTINCT result_message_id FROM jobs")
    names = [name for name, _ in fake.message_files(int(message_id))]
    assert names == [f"imagine-{job_id}-1.png" for job_id in ids]  # each exactly once, in order
    assert files_sent(fake) == dict.fromkeys(ids, 1)  # nothing was uploaded twice
    states = rows(db, "SELECT job_id, state FROM deliveries WHERE image_index >= 1 ORDER BY job_id")
    assert states == [(job_id, "sent") for job_id in ids]
    content = fake.messages[int(message_id)]["content"]
    assert "4 of 4" in content and "rendering" not in content


def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


@pytest.mark.timeout(120)
async def test_a_killed_process_leaves_the_rest_of_the_request_to_the_other_on_postgresql(
    keyed_sandbox: Sandbox, pg_url: str, tmp_path: Path
) -> None:
    """Two processes on one PostgreSQL. The one that took the request dies (`os._exit`) right after an
    edit added image 2 and before it was recorded, holding the message's claim; the other takes its
    jobs over when their leases run out, finds image 2 in the message, and adds images 3 and 4."""
    for seconds in (0.2, 0.6, 4.0, 4.0):
        keyed_sandbox.force_next(duration=seconds)
    shared = {"DATABASE_URL": pg_url, "SHARD_COUNT": "2", "JOB_LEASE_SECONDS": "3", "LOG_LEVEL": "INFO"}
    async with running_fake(token=TOKEN) as fake:
        store = await Store.open_url(pg_url)
        try:
            jobs = await write_request(store, ImageRequest("four, one process dies"), channel_origin(fake), 4)
        finally:
            await store.close()
        ids = [job.id for job in jobs]
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with bot_process(
            fake,
            keyed_sandbox,
            tmp_path / "a" / "unused.db",
            module="tests.request_crash_child",
            CRASH_AT="edit",
            SHARD_IDS="0",
            **shared,
        ) as victim:
            # The victim takes the request's jobs at its start; then the other process joins.
            await wait_until(lambda: len(keyed_sandbox.tasks) == 4, "the four tasks submitted", timeout=30)
            async with bot_process(
                fake, keyed_sandbox, tmp_path / "b" / "unused.db", SHARD_IDS="1", **shared
            ) as other:
                assert await victim.wait(60) == CRASHED, victim.stderr.decode()[-3000:]
                claim = pg_rows(pg_url, "SELECT state FROM deliveries WHERE image_index = 0")
                assert claim[0][0].startswith("composing:")  # held by the dead process
                await wait_healthy(other, timeout=60)

                async def all_delivered() -> bool:
                    counted = await asyncio.to_thread(
                        pg_rows, pg_url, "SELECT COUNT(*) FROM jobs WHERE status = 'delivered'"
                    )
                    return counted == [(4,)]

                await wait_until(
                    all_delivered, "the other process to deliver all four", timeout=60, interval=0.1
                )
                await fake.wait_idle()

    posts = [
        r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{fake.channel_id}/messages"
    ]
    assert len(posts) == 1
    [(message_id,)] = pg_rows(pg_url, "SELECT DISTINCT result_message_id FROM jobs")
    names = [name for name, _ in fake.message_files(int(message_id))]
    assert names == [f"imagine-{job_id}-1.png" for job_id in ids]
    assert files_sent(fake) == dict.fromkeys(ids, 1)
    states = pg_rows(pg_url, "SELECT job_id, state FROM deliveries WHERE image_index >= 1 ORDER BY job_id")
    assert states == [(job_id, "sent") for job_id in ids]
