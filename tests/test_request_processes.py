"""A request's images in two real processes on one PostgreSQL: two images finishing at the same moment
in two processes both end in the request's one message (no lost edit), in the request's order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.adapters.store import Store
from bot.adapters.store.interface import Session
from bot.core.models import ImageRequest
from sandbox.server import Sandbox, SandboxConfig
from testing.fake_discord import running_fake
from tests.helpers import wait_until
from tests.request_helpers import channel_origin, write_request
from tests.test_operations import API_KEY, TOKEN, bot_process, wait_healthy


@pytest.fixture
async def keyed_sandbox() -> AsyncIterator[Sandbox]:
    server = Sandbox(SandboxConfig(duration=0.5, seed=11, api_key=API_KEY))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


def _sources(s: Session, sources: dict[int, str]) -> None:
    with s.write() as tx:
        for job_id, source in sources.items():
            tx.update("jobs", job_id, {"source": source})


@pytest.mark.timeout(120)
async def test_two_images_finishing_together_in_two_processes_both_end_in_the_message(
    keyed_sandbox: Sandbox, pg_url: str, tmp_path: Path
) -> None:
    async with running_fake(token=TOKEN) as fake:
        store = await Store.open_url(pg_url)
        try:
            jobs = await write_request(
                store, ImageRequest("two processes, one message"), channel_origin(fake), 3
            )
            # Process A makes images 1 and 2, process B image 3; images 2 and 3 meet at the message.
            sources = {jobs[0].id: "race-a", jobs[1].id: "race-a", jobs[2].id: "race-b"}
            await store.jobs._backend.run(_sources, sources)
        finally:
            await store.close()
        meeting = tmp_path / "meeting"
        meeting.mkdir()
        together = f"{jobs[1].id},{jobs[2].id}"
        async with contextlib.AsyncExitStack() as stack:
            processes = []
            for shard, source in enumerate(("race-a", "race-b")):
                home = tmp_path / source
                home.mkdir()
                processes.append(
                    await stack.enter_async_context(
                        bot_process(
                            fake,
                            keyed_sandbox,
                            home / "unused.db",
                            module="tests.request_race_child",
                            DATABASE_URL=pg_url,
                            SHARD_COUNT="2",
                            SHARD_IDS=str(shard),
                            JOB_LEASE_SECONDS="5",
                            LOG_LEVEL="INFO",
                            RACE_SOURCE=source,
                            RACE_JOBS=together,
                            RACE_DIR=str(meeting),
                        )
                    )
                )
            await asyncio.gather(*(wait_healthy(p, timeout=60) for p in processes))

            async def all_delivered() -> bool:
                rows = await asyncio.to_thread(
                    query, pg_url, "SELECT COUNT(*) FROM jobs WHERE status = 'delivered'"
                )
                return rows == [(3,)]

            await wait_until(all_delivered, "the three images to be delivered", timeout=60, interval=0.1)
            await fake.wait_idle()
            assert sorted(p.name for p in meeting.iterdir()) == sorted(together.split(","))

        posts = [
            r
            for r in fake.requests
            if r.method == "POST" and r.path == f"/channels/{fake.channel_id}/messages"
        ]
        assert len(posts) == 1  # one message for the request, made once
        [message_id] = {row[0] for row in query(pg_url, "SELECT result_message_id FROM jobs")}
        names = [name for name, _ in fake.message_files(int(message_id))]
        assert names == [f"imagine-{job.id}-1.png" for job in jobs]  # both edits are in, in order
        states = query(pg_url, "SELECT job_id, state, message_id FROM deliveries WHERE image_index >= 1")
        assert sorted(states) == sorted((job.id, "sent", message_id) for job in jobs)
        assert query(pg_url, "SELECT state FROM deliveries WHERE image_index = 0") == [("shown",)]
        assert "3 of 3" in fake.messages[int(message_id)]["content"]
