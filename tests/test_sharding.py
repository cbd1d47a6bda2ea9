"""Discord sharding: the real bot runs shards of a sharded fake Discord, one process or split in two.

Two bot instances in one test process stand for two processes: each has its own gateway connections,
HTTP session, job runner and store connection on the same SQLite file (a real multi-process deployment
uses PostgreSQL; the leases that hand jobs over are the same code).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest

from bot.core.models import Job, JobStatus
from bot.discord.client import ImagineBot
from bot.ops import metrics
from sandbox.server import Sandbox, SandboxConfig
from testing.fake_discord import FakeDiscord, RecordedRequest, running_fake, shard_of
from tests.bot_harness import World, wait_for_job
from tests.helpers import wait_until

DEFERRED = 5


def delivered(job: Job) -> bool:
    return job.status is JobStatus.DELIVERED


def guilds_on_shards(fake: FakeDiscord, count: int) -> dict[int, int]:
    """One server per shard (shard id -> guild id), with the test member in each."""
    guilds = {}
    for shard in range(count):
        gid = fake.add_guild(f"Shard {shard} server", shard=(shard, count))
        fake.add_member(gid, fake.user_id)
        guilds[shard] = gid
    return guilds


def image_posts(fake: FakeDiscord, guild_id: int) -> list[RecordedRequest]:
    channel = fake.guilds[guild_id].channel_ids[0]
    return [
        r
        for r in fake.requests
        if r.method == "POST" and r.path == f"/channels/{channel}/messages" and r.files and r.status == 200
    ]


def command_syncs(fake: FakeDiscord) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]


def identified_shards(fake: FakeDiscord) -> list[list[int]]:
    return sorted(frame["d"]["shard"] for frame in fake.gateway_log if frame.get("op") == 2)


def seen_interactions(bot: ImagineBot) -> list[int]:
    """Ids of the interactions this bot's gateway delivered to it (discord.py's on_interaction)."""
    seen: list[int] = []

    async def record(interaction: discord.Interaction) -> None:
        seen.append(interaction.id)

    bot.add_listener(record, "on_interaction")
    return seen


def test_guilds_land_on_the_shard_asked_for() -> None:
    fake = FakeDiscord()
    for count in (2, 3, 16):
        for shard in range(count):
            gid = fake.add_guild("s", shard=(shard, count))
            assert shard_of(gid, count) == shard == (gid >> 22) % count


async def test_without_shard_settings_the_bot_runs_the_shards_discord_recommends(
    sandbox: Sandbox, db_path: Path
) -> None:
    async with running_fake(recommended_shards=2) as fake:
        world = World(fake, sandbox, db_path)
        guilds = guilds_on_shards(fake, 2)
        async with world.bot() as bot:
            assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
            assert identified_shards(fake) == [[0, 2], [1, 2]]
            assert {shard: bot.get_guild(gid) is not None for shard, gid in guilds.items()} == {
                0: True,
                1: True,
            }
        assert any(r.path == "/gateway/bot" for r in fake.requests)


async def test_one_process_with_both_shards_serves_servers_on_each(world: World) -> None:
    fake = world.fake
    guilds = guilds_on_shards(fake, 2)
    async with world.bot(shard_count=2, dev_guild_id=None, default_personal_quota=0) as bot:
        assert sorted(fake.connected_shards()) == [(0, 2), (1, 2)]
        assert identified_shards(fake) == [[0, 2], [1, 2]]
        for shard, gid in guilds.items():
            guild = bot.get_guild(gid)
            assert guild is not None and guild.shard_id == shard

        sent = {}
        for shard, gid in guilds.items():
            inter = await fake.invoke_slash(
                "imagine", {"prompt": f"a lighthouse on shard {shard}"}, guild_id=gid
            )
            sent[shard] = inter
        for inter in sent.values():
            assert (await fake.wait_for_callback(inter)).json["type"] == DEFERRED
        assert {shard: inter.shard for shard, inter in sent.items()} == {0: 0, 1: 1}
        in_dm = await fake.invoke_slash("imagine", {"prompt": "a fox"}, dm=True)
        answer = await fake.wait_for_callback(in_dm)
        # DMs: shard 0 (personal use, turned off here so that only the servers' images are made)
        assert in_dm.shard == 0 and "Personal use" in answer.json["data"]["content"]
        jobs = [await wait_for_job(bot, delivered, job_id) for job_id in (1, 2)]

        # Both shards count for health and metrics (discord.py's per-shard latencies).
        assert await bot.health_problems() == {}
        await bot.refresh_metrics()
        for shard in ("0", "1"):
            value = metrics.registry.get_sample_value(
                "imagine_discord_gateway_latency_seconds", {"shard": shard}
            )
            assert value is not None and value >= 0

    assert {job.guild_id for job in jobs} == set(guilds.values())
    for gid in guilds.values():
        [post] = image_posts(fake, gid)
        assert post.json["allowed_mentions"]["parse"] == []
    assert len(world.submits()) == 2
    [sync] = command_syncs(fake)  # globally, once
    assert sync.path == f"/applications/{fake.application_id}/commands"


async def test_health_names_a_shard_that_lost_its_connection_until_it_is_back(world: World) -> None:
    fake = world.fake
    async with world.bot(shard_count=2) as bot:
        assert await bot.health_problems() == {}
        await fake.drop_shard(1, refuse_for=1.0)
        problems = await wait_until(bot.health_problems, "health to name the lost shard", timeout=1.0)
        assert problems == {"gateway": "shard 1 not connected to Discord"}

        async def healthy() -> bool:
            return not await bot.health_problems()

        # discord.py retries with a backoff, then RESUMEs
        await wait_until(healthy, "the shard to be back and health clear", timeout=15.0, interval=0.05)
        assert sorted(fake.connected_shards()) == [(0, 2), (1, 2)]


async def test_two_processes_each_get_only_their_servers_and_deliver_each_job_once(world: World) -> None:
    fake = world.fake
    guilds = guilds_on_shards(fake, 2)
    async with (
        world.bot(shard_count=2, shard_ids=(0,), dev_guild_id=None) as first,
        world.bot(shard_count=2, shard_ids=(1,), dev_guild_id=None) as second,
    ):
        assert sorted(fake.connected_shards()) == [(0, 2), (1, 2)]
        assert list(first.shards) == [0] and list(second.shards) == [1]
        # Each process knows only its own servers.
        assert first.get_guild(guilds[0]) is not None and first.get_guild(guilds[1]) is None
        assert second.get_guild(guilds[1]) is not None and second.get_guild(guilds[0]) is None
        seen = {0: seen_interactions(first), 1: seen_interactions(second)}

        sent: dict[int, list[int]] = {0: [], 1: []}
        for round_ in range(3):
            member = fake.add_user(f"member-{round_}")  # a member may have 2 images in progress at once
            for shard, gid in guilds.items():
                fake.add_member(gid, member)
                inter = await fake.invoke_slash(
                    "imagine", {"prompt": f"a kite {round_} over shard {shard}"}, guild_id=gid, user_id=member
                )
                sent[shard].append(inter.id)
        for job_id in range(1, 7):
            await wait_for_job(first, delivered, job_id)
        assert await first.health_problems() == {} and await second.health_problems() == {}

        # Every interaction reached the one process whose shard owns its server.
        assert seen == sent

    assert len(world.submits()) == 6  # each job submitted once
    for gid in guilds.values():
        posts = image_posts(fake, gid)
        names = sorted(f.filename for post in posts for f in post.files)
        assert len(posts) == 3 and len(set(names)) == 3  # each job's image posted once
    # Only the process running shard 0 synced the commands.
    [sync] = command_syncs(fake)
    assert sync.path == f"/applications/{fake.application_id}/commands"


@pytest.fixture
async def slow_sandbox() -> AsyncIterator[Sandbox]:
    server = Sandbox(SandboxConfig(duration=2.0, seed=11))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_job_is_finished_by_the_other_process_when_its_shard_process_stops(
    slow_sandbox: Sandbox, db_path: Path
) -> None:
    """Delivery needs REST and the interaction token only: the process that owns no part of the server
    polls and posts the image after the one that took the command stopped."""
    async with running_fake() as fake:
        world = World(fake, slow_sandbox, db_path)
        guilds = guilds_on_shards(fake, 2)
        async with world.bot(shard_count=2, shard_ids=(1,), dev_guild_id=None) as second:
            async with world.bot(shard_count=2, shard_ids=(0,), dev_guild_id=None) as first:
                inter = await fake.invoke_slash("imagine", {"prompt": "a slow glacier"}, guild_id=guilds[0])
                await fake.wait_for_callback(inter)
                running = await wait_for_job(first, lambda j: j.status is JobStatus.RUNNING)
            # The first process is gone, with the job still running at the image API.
            assert fake.connected_shards() == [(1, 2)]
            still = await second.store.get_job(running.id)
            assert still is not None and still.status is JobStatus.RUNNING
            assert second.get_guild(guilds[0]) is None
            job = await wait_for_job(second, delivered, timeout=15.0)

    assert running.task_id is not None and job.task_id == running.task_id
    assert len(world.submits()) == 1
    [post] = image_posts(fake, guilds[0])
    assert job.result_message_id == int(fake.messages[job.result_message_id or 0]["id"])
    assert int(post.json["message_reference"]["message_id"]) == inter.original_message_id
    original = fake.messages[inter.original_message_id or 0]
    assert "Done" in original["content"]  # the status message, edited through the interaction token
