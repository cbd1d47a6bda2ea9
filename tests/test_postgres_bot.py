"""The real bot (fake Discord, sandbox API) on PostgreSQL, and a SQLite database written by the bot's own
flows moved over with `migrate-db`, the next bot carrying on from it."""

from __future__ import annotations

import sqlite3

import psycopg

from bot.adapters.store.pg_schema import TABLES
from bot.core.models import JobStatus
from bot.ops.config import Secret
from bot.ops.migrate_db import migrate_database
from tests.bot_harness import World, wait_for_job


async def test_imagine_on_postgresql_is_delivered_once(world: World, pg_url: str) -> None:
    async with world.bot(database_url=Secret(pg_url)) as bot:
        assert bot.store.dialect == "postgresql"
        await world.fake.invoke_slash("imagine", {"prompt": "a lighthouse on postgres"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        await world.settle(bot)  # a duplicate would be under way or posted by now
    assert len(world.bot_posts()) == 1 and len(world.submits()) == 1
    assert job.interaction_token is None and job.result_message_id is not None
    assert not (world.db_path.exists()), "nothing was written to the SQLite file"


async def test_a_sqlite_bot_s_data_moves_over_and_the_next_bot_carries_on(world: World, pg_url: str) -> None:
    fake = world.fake
    async with world.bot() as first:
        for n in (1, 2):
            await fake.invoke_slash("imagine", {"prompt": f"before the move {n}"})
            await wait_for_job(first, lambda j: j.status is JobStatus.DELIVERED, job_id=n)
        world.sandbox.config.duration = 1.5
        await fake.invoke_slash("imagine", {"prompt": "running across the move"})
        await wait_for_job(first, lambda j: j.status is JobStatus.RUNNING, job_id=3)
    assert len(world.bot_posts()) == 2

    copied = await migrate_database(world.db_path, pg_url)
    src = sqlite3.connect(world.db_path)
    try:
        expected = {
            table: int(src.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]) for table in TABLES
        }
        sample = src.execute(
            "SELECT id, status, prompt, task_id, result_message_id FROM jobs ORDER BY id"
        ).fetchall()
    finally:
        src.close()
    assert copied.counts == expected and expected["jobs"] == 3 and expected["usage"] == 3
    with psycopg.connect(pg_url) as conn:
        moved = conn.execute(
            "SELECT id, status, prompt, task_id, result_message_id FROM jobs ORDER BY id"
        ).fetchall()
    assert moved == sample

    async with world.bot(database_url=Secret(pg_url)) as second:
        job = await wait_for_job(second, lambda j: j.status is JobStatus.DELIVERED, job_id=3)
        await fake.invoke_slash("imagine", {"prompt": "after the move"})
        fresh = await wait_for_job(second, lambda j: j.status is JobStatus.DELIVERED, job_id=4)
        await world.settle(second)
    assert job.task_id is not None and fresh.id == 4
    assert len(world.bot_posts()) == 4 and len(world.submits()) == 4  # nothing sent or posted twice
