"""Quotas as members meet them in Discord: refusals are private, the race is fair, failures are free."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import UTC, datetime

from bot.core.models import JobStatus
from bot.core.policy.quotas import Member, day_bounds
from tests.bot_harness import EPHEMERAL, ShiftedClock, World, wait_for_job
from tests.helpers import FAST_RUNNER

DEFERRED = 5


async def test_fifty_simultaneous_imagines_with_five_left_start_exactly_five(world: World) -> None:
    fake = world.fake
    world.sandbox.config.duration = 2.0
    async with world.bot(default_daily_quota=5) as bot:
        await bot.store.settings.update_policy(
            fake.guild_id, fake.owner_id, bot.clock.time(), max_running=100
        )
        interactions = await asyncio.gather(
            *(fake.invoke_slash("imagine", {"prompt": f"cat number {i}"}) for i in range(50))
        )
        callbacks = [await fake.wait_for_callback(i, timeout=15) for i in interactions]
        deferred = [c for c in callbacks if c.json["type"] == DEFERRED]
        refused = [c for c in callbacks if c.json["type"] != DEFERRED]
        assert len(deferred) == 5
        assert all(c.json["data"]["flags"] & EPHEMERAL for c in refused)
        assert all("used all 5" in c.json["data"]["content"] for c in refused)
        for job_id in range(1, 6):
            await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING, job_id=job_id)
    assert len(world.submits()) == 5


async def test_quota_resets_at_the_day_boundary(world: World) -> None:
    fake = world.fake
    now = datetime.now(UTC).timestamp()
    _, midnight = day_bounds(now, "UTC")
    clock = ShiftedClock()
    async with world.bot(default_daily_quota=1, clock=clock) as bot:
        await fake.invoke_slash("imagine", {"prompt": "first of the day"})
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
        second = await fake.invoke_slash("imagine", {"prompt": "one too many"})
        callback = await fake.wait_for_callback(second)
        assert callback.json["data"]["flags"] & EPHEMERAL
        assert f"<t:{int(midnight)}:R>" in callback.json["data"]["content"]
        clock.offset = midnight - now + 1  # just past midnight, no sleeping
        third = await fake.invoke_slash("imagine", {"prompt": "a new day"})
        assert (await fake.wait_for_callback(third)).json["type"] == DEFERRED
        await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=2)
    assert len(world.submits()) == 2


async def test_failed_and_timed_out_jobs_do_not_count(world: World) -> None:
    fake = world.fake
    member = Member(fake.guild_id, fake.user_id)
    world.sandbox.force_next("failed", error_message="upstream error")
    world.sandbox.force_next(never_finish=True)
    async with world.bot(runner_config=replace(FAST_RUNNER, time_limit=0.5), default_daily_quota=2) as bot:
        await fake.invoke_slash("imagine", {"prompt": "will fail"})
        await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=1)
        await fake.invoke_slash("imagine", {"prompt": "will time out"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=2)
        assert job.status is JobStatus.TIMED_OUT
        summary = await bot.store.usage.summary(member, bot.clock.time(), 2)
        assert summary.used_today == 0 and summary.running == 0
        await fake.invoke_slash("imagine", {"prompt": "works"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=3)
        assert job.status is JobStatus.DELIVERED
        assert (await bot.store.usage.summary(member, bot.clock.time(), 2)).used_today == 1


async def test_banned_member_is_refused_privately_and_nothing_is_sent(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        until = bot.clock.time() + 3600
        await bot.store.settings.ban(
            fake.guild_id,
            fake.user_id,
            reason="flooding",
            expires_at=until,
            actor_id=fake.owner_id,
            now=until - 3600,
        )
        interaction = await fake.invoke_slash("imagine", {"prompt": "let me in"})
        callback = await fake.wait_for_callback(interaction)
    assert callback.json["data"]["flags"] & EPHEMERAL
    content = callback.json["data"]["content"]
    assert "flooding" in content and f"<t:{math.ceil(until)}:f>" in content
    assert world.submits() == [] and world.bot_posts() == []
