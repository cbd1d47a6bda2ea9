"""Two real `python -m bot` processes, each running one shard of two, against one sharded fake Discord.

Each process has its own SQLite file here (SQLite is single-process; processes that share jobs share a
PostgreSQL database): this test is about the gateway side, i.e. which process hears which server.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.server import Sandbox, SandboxConfig
from testing.fake_discord import RecordedRequest, running_fake
from tests.test_operations import API_KEY, TOKEN, bot_process, wait_healthy
from tests.test_sharding import command_syncs, guilds_on_shards


@pytest.fixture
async def keyed_sandbox() -> AsyncIterator[Sandbox]:
    server = Sandbox(SandboxConfig(duration=0.3, seed=5, api_key=API_KEY))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def jobs_in(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return [(int(g), str(s)) for g, s in conn.execute("SELECT guild_id, status FROM jobs")]


async def test_two_processes_each_hear_only_the_servers_of_their_shard(
    keyed_sandbox: Sandbox, tmp_path: Path
) -> None:
    dbs = [tmp_path / f"p{shard}" / "bot.db" for shard in (0, 1)]
    for db in dbs:
        db.parent.mkdir()
    async with running_fake(token=TOKEN) as fake:
        guilds = guilds_on_shards(fake, 2)
        shared = {"SHARD_COUNT": "2"}
        async with (
            bot_process(fake, keyed_sandbox, dbs[0], SHARD_IDS="0", **shared) as first,
            bot_process(fake, keyed_sandbox, dbs[1], SHARD_IDS="1", **shared) as second,
        ):
            await asyncio.gather(wait_healthy(first), wait_healthy(second))
            assert sorted(fake.connected_shards()) == [(0, 2), (1, 2)]
            for shard, gid in guilds.items():
                inter = await fake.invoke_slash(
                    "imagine", {"prompt": f"a harbour, shard {shard}"}, guild_id=gid
                )
                await fake.wait_for_callback(inter, timeout=10)
                assert inter.shard == shard
            for gid in guilds.values():
                channel = fake.guilds[gid].channel_ids[0]

                def image_post(r: RecordedRequest, path: str = f"/channels/{channel}/messages") -> bool:
                    return r.method == "POST" and r.path == path and bool(r.files)

                await fake.wait_for_request(image_post, timeout=20)
            for process in (first, second):
                process.process.send_signal(signal.SIGTERM)
            assert await first.wait(10) == 0 and await second.wait(10) == 0

    # Each process took (and delivered) only the command from its own shard's server.
    assert jobs_in(dbs[0]) == [(guilds[0], "delivered")]
    assert jobs_in(dbs[1]) == [(guilds[1], "delivered")]
    [sync] = command_syncs(fake)  # by the process running shard 0 only
    assert sync.path.endswith(f"/guilds/{fake.guild_id}/commands")
