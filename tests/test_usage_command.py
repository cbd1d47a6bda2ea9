"""/usage through the fake Discord, and `python -m bot stats` from a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.store import Store
from bot.core.models import ImageRequest, JobStatus, Origin
from bot.core.policy.quotas import Member, day_bounds, discord_time
from testing.fake_discord import MANAGE_MESSAGES, FakeDiscord
from tests.bot_harness import EPHEMERAL, World, wait_for_job

DEFERRED = 5


async def usage(fake: FakeDiscord, *, user_id: int | None = None, member: int | None = None) -> str:
    options = {"member": member} if member is not None else {}
    interaction = await fake.invoke_slash("usage", options, user_id=user_id)
    callback = (await fake.wait_for_callback(interaction)).json
    assert callback["type"] == 4 and callback["data"]["flags"] & EPHEMERAL
    assert callback["data"]["allowed_mentions"] == {"parse": []}
    return str(callback["data"]["content"])


async def test_usage_shows_my_use_limit_and_reset(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await fake.invoke_slash("imagine", {"prompt": "a kite"})
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
        await bot.store.settings.grant_credits(
            fake.guild_id, fake.user_id, 2, fake.moderator_id, bot.clock.time()
        )
        text = await usage(fake)
        _, reset = day_bounds(bot.clock.time(), "UTC")
    assert text.startswith("**Your image use in this server**")
    assert "Today: **1** of 10 (9 left) · this month: **1**" in text
    assert "One-off credits: **2**" in text
    assert f"resets {discord_time(reset)} ({discord_time(reset, 'f')})" in text
    assert "Running now" not in text and "⛔" not in text


async def test_usage_shows_unlimited_off_and_a_ban(world: World) -> None:
    fake = world.fake
    guild, user = fake.guild_id, fake.user_id
    async with world.bot() as bot:
        now = bot.clock.time()
        await bot.store.settings.set_user_quota(
            guild, user, limit=None, unlimited=True, actor_id=fake.owner_id, now=now
        )
        assert "Today: **0** (no daily limit)" in await usage(fake)
        await bot.store.settings.set_user_quota(
            guild, user, limit=0, unlimited=False, actor_id=fake.owner_id, now=now
        )
        await bot.store.settings.ban(
            guild, user, reason="spam", expires_at=now + 600, actor_id=fake.owner_id, now=now
        )
        text = await usage(fake)
    assert "image generation is off for you (limit 0)" in text
    assert f"⛔ You cannot use the image bot in this server until {discord_time(now + 600, 'f')}" in text


async def test_moderators_see_another_members_use_with_their_roles(world: World) -> None:
    fake = world.fake
    guild, user = fake.guild_id, fake.user_id
    artist = fake.add_role(guild, "Artist", 0)
    fake.guilds[guild].members[user].roles.append(artist)
    helper_role = fake.add_role(guild, "Helper", MANAGE_MESSAGES)
    helper = fake.add_member(guild, username="helper-hal", roles=[helper_role])
    async with world.bot() as bot:
        await bot.store.settings.set_role_quota(guild, artist, 25, fake.owner_id, bot.clock.time())
        await fake.invoke_slash("imagine", {"prompt": "a boat"})
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
        by_moderator = await usage(fake, user_id=fake.moderator_id, member=user)
        by_helper = await usage(fake, user_id=helper, member=user)
        own = await usage(fake, member=user)  # naming yourself is always fine
        by_owner = await usage(fake, user_id=fake.owner_id, member=fake.moderator_id)
    assert by_moderator.startswith(f"**Image use of <@{user}>**")
    assert "Today: **1** of 25 (24 left)" in by_moderator  # the role's limit, from the resolved member
    assert by_helper == by_moderator
    assert own.startswith("**Your image use in this server**") and "of 25" in own
    assert (
        by_owner.startswith(f"**Image use of <@{fake.moderator_id}>**") and "Today: **0** of 10" in by_owner
    )


async def test_plain_member_cannot_look_at_someone_else(world: World) -> None:
    fake = world.fake
    async with world.bot():
        text = await usage(fake, member=fake.moderator_id)
    assert text.startswith("Only moderators (Manage Server or Manage Messages) can look at another member")
    assert "Today" not in text


async def _fill(db_path: Path, guild: int, user: int) -> None:
    store = await Store.open(db_path)
    now = time.time()
    try:
        origin = Origin(guild_id=guild, channel_id=7, user_id=user)
        for n in range(3):
            decision, jobs = await store.usage.admit(
                Member(guild, user), ImageRequest(f"cat {n}"), origin, now, 10
            )
            job = jobs[0] if jobs else None
            assert decision.allowed and job is not None
            await store.jobs.mark_submitting(job.id)
            await store.jobs.mark_running(job.id, f"task-{n}", now, now + 1)
            if n < 2:
                await store.jobs.mark_completed(job.id, [], now + 1, None)
            else:
                await store.jobs.mark_ended(job.id, JobStatus.FAILED, "upstream error", now + 1)
        common: dict[str, Any] = {"guild_id": guild, "channel_id": 7, "prompt": "x", "aspect_ratio": None}
        common |= {"ref_count": 0, "detail": None}
        await store.usage.log_refusal(**common, user_id=user, reason="quota", now=now)
        await store.usage.log_refusal(**common, user_id=user + 1, reason="banned", now=now - 20 * 86_400)
    finally:
        await store.close()


def _stats(db_path: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env |= {"DATABASE_PATH": str(db_path), "MOUNTSEA_API_KEY": "test-key"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "stats", *args],
        cwd=cwd,  # no .env from the project directory
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_stats_from_the_terminal(db_path: Path, tmp_path: Path) -> None:
    guild, user = 111_111_111_111_111_111, 222_222_222_222_222_222
    await _fill(db_path, guild, user)

    week = _stats(db_path, tmp_path, "--days", "7")
    assert week.returncode == 0, week.stderr
    out = week.stdout
    assert out.startswith("Image bot report for all servers\n")
    assert "Today (since 00:00 UTC)" in out and "Last 7 days" in out and "Last 30 days" not in out
    assert "Generations: 3 (2 completed, 1 failed or timed out) · failure rate 33.3%" in out
    assert "Refused: 1 (quota 1)" in out and "banned" not in out
    assert f"Top users: user {user} 3" in out and "**" not in out and "<@" not in out

    month = _stats(db_path, tmp_path, "--guild", str(guild))
    assert month.returncode == 0, month.stderr
    assert f"Image bot report for server {guild}" in month.stdout
    assert "Last 7 days" in month.stdout and "Refused: 2 (banned 1, quota 1)" in month.stdout


def test_stats_without_a_database_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("MOUNTSEA_API_KEY", raising=False)  # the report needs no key either
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "nowhere.db"))
    assert main(["stats"]) == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere.db").exists()
