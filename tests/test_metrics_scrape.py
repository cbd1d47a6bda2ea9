"""/metrics and /healthz as Prometheus and Docker see them: answered within their deadline while the
database is locked, figures of the shared database exported by one process only (two bots in one
registry are two processes summed), and jobs counted by how they finished."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg

from bot.core.models import JobStatus
from bot.ops.config import Secret
from bot.ops.health import ANSWER_DEADLINE
from sandbox.server import Sandbox
from testing.fake_discord import running_fake
from tests.bot_harness import ShiftedClock, World, wait_for_job
from tests.test_operations import get, sample
from tests.test_sharding import guilds_on_shards

# Prometheus gives up on a scrape after 10 s by default.
PROMETHEUS_TIMEOUT = 10.0


async def test_metrics_and_healthz_answer_in_time_while_the_database_is_locked(
    sandbox: Sandbox, tmp_path: Path, pg_url: str
) -> None:
    async with running_fake() as fake:
        world = World(fake, sandbox, tmp_path / "bot.db")
        async with world.bot(metrics_port=0, database_url=Secret(pg_url)) as bot:
            assert bot.ops_server is not None
            base = f"http://127.0.0.1:{bot.ops_server.port}"
            assert "imagine_jobs{" in (await get(base + "/metrics"))[1]
            with psycopg.connect(pg_url) as locker:
                # Every read of the jobs and usage tables now waits for this transaction.
                locker.execute("LOCK TABLE jobs, usage IN ACCESS EXCLUSIVE MODE")
                try:
                    for path in ("/metrics", "/healthz", "/metrics"):
                        started = time.monotonic()
                        async with asyncio.timeout(PROMETHEUS_TIMEOUT):
                            status, body = await get(base + path)
                        took = time.monotonic() - started
                        assert took < ANSWER_DEADLINE + 2 < PROMETHEUS_TIMEOUT, (path, took)
                        if path == "/metrics":
                            assert status == 200 and "imagine_event_loop_lag_seconds_count" in body
                finally:
                    locker.rollback()


async def test_shared_database_figures_are_exported_by_one_process(sandbox: Sandbox, tmp_path: Path) -> None:
    """Two bots (shards 0 and 1 of 2) on one database, scraped into one registry: the sum Prometheus
    would take over two processes. One refusal in the usage log is one refusal in the sum."""
    clock = ShiftedClock()
    async with running_fake() as fake:
        world = World(fake, sandbox, tmp_path / "bot.db")
        guilds_on_shards(fake, 2)
        async with (
            world.bot(shard_count=2, shard_ids=(0,), dev_guild_id=None, metrics_port=0, clock=clock) as first,
            world.bot(
                shard_count=2, shard_ids=(1,), dev_guild_id=None, metrics_port=0, clock=clock
            ) as second,
        ):
            assert first.ops_server is not None and second.ops_server is not None
            urls = [
                f"http://127.0.0.1:{server.port}/metrics" for server in (first.ops_server, second.ops_server)
            ]
            before = [(await get(url))[1] for url in urls][-1]
            await first.store.log_refusal(
                guild_id=fake.guild_id, channel_id=fake.channel_id, user_id=fake.user_id, prompt="x",
                aspect_ratio=None, ref_count=0, reason="cooldown", detail=None, now=clock.time(),
            )  # fmt: skip
            clock.offset += 5  # past the settling time of the newest refusals
            after = [(await get(url))[1] for url in urls][-1]
    name = 'imagine_refusals_total{reason="cooldown"}'
    assert sample(after, name) - sample(before, name) == 1


async def test_finished_jobs_are_counted_by_outcome(world: World) -> None:
    async with world.bot(metrics_port=0) as bot:
        assert bot.ops_server is not None
        url = f"http://127.0.0.1:{bot.ops_server.port}/metrics"
        before = (await get(url))[1]
        for outcome in ("completed", "failed", "timed_out", "undeliverable", "cancelled"):
            assert f'imagine_jobs_finished_total{{outcome="{outcome}"}}' in before  # present from the start

        await world.fake.invoke_slash("imagine", {"prompt": "a harbour"})
        await wait_for_job(bot, lambda job: job.delivered_at is not None, job_id=1)
        world.sandbox.force_next("failed", error_message="no", error_code=400)
        await world.fake.invoke_slash("imagine", {"prompt": "a refused one"})
        failed = await wait_for_job(bot, lambda job: job.delivered_at is not None, job_id=2)
        assert failed.status is JobStatus.FAILED
        world.sandbox.config.duration = 60.0
        await world.fake.invoke_slash("imagine", {"prompt": "a slow one"})
        running = await wait_for_job(bot, lambda job: job.status is JobStatus.RUNNING, job_id=3)
        assert running.user_id is not None
        assert await bot.runner.cancel(running, running.user_id) is not None
        after = (await get(url))[1]
    for outcome, count in (("completed", 1), ("failed", 1), ("cancelled", 1), ("timed_out", 0)):
        name = f'imagine_jobs_finished_total{{outcome="{outcome}"}}'
        assert sample(after, name) - sample(before, name) == count, outcome
