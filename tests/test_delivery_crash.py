"""At most one delivery per job on every route, when the process dies between "Discord accepted the
image" and "the delivery is recorded".

A real bot process (tests/delivery_crash_child.py) runs five jobs, one per route: the channel, the
status message (the channel refuses the bot), a message only the requester sees, a DM, and personal
use's interaction follow-up. It dies (`os._exit`) once Discord has accepted all five images and before
any was recorded. The next process (a restart on SQLite; on PostgreSQL, the other process taking over
the dead one's leases) looks on each route before sending: nothing is sent twice, and where Discord
cannot show whether the image arrived (the message only the requester saw, the follow-up), it is not
sent again and the requester is told privately, once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.adapters.store import Store
from sandbox.server import Sandbox, SandboxConfig
from testing.fake_discord import FakeDiscord, FakeInteraction, running_fake
from tests.delivery_crash_child import CRASHED
from tests.helpers import wait_until
from tests.test_multiprocess import image_messages_per_job, image_posts_per_job
from tests.test_operations import API_KEY, TOKEN, bot_process, wait_healthy

ROUTES = ("channel", "status", "ephemeral", "dm", "followup")
EPHEMERAL = 64
NOTE = "may not have reached you"
# What the next process finds per route: sent (found where it was), or told (the requester was told).
SETTLED = {"channel": "sent", "status": "sent", "dm": "sent", "ephemeral": "told", "followup": "told"}
LEASE = 3.0


@pytest.fixture
async def quick_sandbox() -> AsyncIterator[Sandbox]:
    server = Sandbox(SandboxConfig(duration=0.3, seed=5, api_key=API_KEY))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def prepare(fake: FakeDiscord, store: Store, guild_id: int) -> dict[str, int]:
    """One requester per route (route -> user id), and a server that allows private images."""
    now = time.time()
    users = {route: fake.add_member(guild_id, username=f"asks-by-{route}") for route in ROUTES}
    try:
        await store.update_policy(guild_id, fake.owner_id, now, max_running=20, private_images=True)
        await store.save_member_settings(guild_id, users["ephemeral"], now, delivery="ephemeral")
        await store.save_member_settings(guild_id, users["dm"], now, delivery="dm")
    finally:
        await store.close()
    return users


async def ask_on_every_route(
    fake: FakeDiscord, guild_id: int, users: dict[str, int]
) -> list[FakeInteraction]:
    closed = fake.add_channel(guild_id, "no-bot-posts")
    fake.forbid_channel_posts(closed)  # the status message takes the image instead
    asked = []
    for route, user in users.items():
        where: dict[str, Any] = {"guild_id": guild_id}
        if route == "status":
            where["channel_id"] = closed
        if route == "followup":
            where = {"dm": True, "user_install": True}  # personal use, in the member's DM with the bot
        interaction = await fake.invoke_slash("imagine", {"prompt": f"by {route}"}, user_id=user, **where)
        await fake.wait_for_callback(interaction, timeout=10)
        asked.append(interaction)
    return asked


def notes_per_user(fake: FakeDiscord, users: dict[str, int]) -> collections.Counter[str]:
    """The "may not have reached you" notes, by route: each must be private (ephemeral or a DM)."""
    routes = {user: route for route, user in users.items()}
    dms = {str(fake.dm_channel(user)): route for route, user in users.items()}
    found: dict[int, str] = {}
    for inter in fake.interactions.values():
        for mid in [inter.original_message_id, *inter.followup_ids]:
            message = fake.messages.get(mid or 0)
            if message and NOTE in message["content"]:
                assert message["flags"] & EPHEMERAL, message
                found[int(message["id"])] = routes[inter.user_id]
    for mid, message in fake.messages.items():
        if NOTE in message["content"] and message["channel_id"] in dms:
            found[mid] = dms[message["channel_id"]]
    return collections.Counter(found.values())


async def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    await wait_until(lambda: asyncio.to_thread(check), what, timeout, interval=0.1)


def check_outcome(
    fake: FakeDiscord, users: dict[str, int], jobs: list[tuple[int, int]], deliveries: list[tuple[Any, ...]]
) -> None:
    by_user = {user: job_id for job_id, user in jobs}
    job_of = {route: by_user[user] for route, user in users.items()}
    assert image_posts_per_job(fake) == {job_of[r]: 1 for r in ROUTES}  # one send each, ever
    assert image_messages_per_job(fake) == {job_of[r]: 1 for r in ROUTES}
    assert notes_per_user(fake, users) == {"ephemeral": 1, "followup": 1}
    states = {job_id: (route, state) for job_id, _, route, state in deliveries}
    assert states == {job_of[r]: (r, SETTLED[r]) for r in ROUTES}


@contextlib.asynccontextmanager
async def victim_process(fake: FakeDiscord, sandbox: Sandbox, db: Path, **env: str) -> AsyncIterator[Any]:
    # The child holds every delivery at "Discord accepted" until the last route's arrives, and all five
    # fetch from the one sandbox host, which may hold at most half the delivery slots: ten slots let
    # all five be held at once.
    env = {"DELIVERY_CONCURRENCY": "10", **env}
    async with bot_process(
        fake, sandbox, db, module="tests.delivery_crash_child", CRASH_AFTER_ROUTES=",".join(ROUTES), **env
    ) as victim:
        yield victim


def sqlite_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(conn.execute(sql).fetchall())


async def test_a_restart_sends_nothing_twice_on_any_route(quick_sandbox: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    deliveries_sql = "SELECT job_id, image_index, route, state FROM deliveries ORDER BY job_id"
    async with running_fake(token=TOKEN) as fake:
        users = await prepare(fake, await Store.open(db), fake.guild_id)
        async with victim_process(fake, quick_sandbox, db) as victim:
            await wait_healthy(victim)
            await ask_on_every_route(fake, fake.guild_id, users)
            assert await victim.wait(60) == CRASHED, victim.stderr.decode()[-3000:]
        # Discord has all five images; the database knows only that each was about to be sent.
        assert {state for *_, state in sqlite_rows(db, deliveries_sql)} == {"sending"}
        assert len(image_messages_per_job(fake)) == len(ROUTES)
        assert sqlite_rows(db, "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NOT NULL") == [(0,)]

        async with bot_process(fake, quick_sandbox, db) as again:
            await wait_healthy(again)
            await wait_for(
                lambda: sqlite_rows(db, "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NULL") == [(0,)],
                30,
                "every job recorded as delivered after the restart",
            )
            again.process.send_signal(signal.SIGTERM)
            assert await again.wait(20) == 0
        jobs = [(job_id, user) for job_id, user in sqlite_rows(db, "SELECT id, user_id FROM jobs")]
        check_outcome(fake, users, jobs, sqlite_rows(db, deliveries_sql))


def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


async def test_a_take_over_on_postgresql_sends_nothing_twice_on_any_route(
    quick_sandbox: Sandbox, pg_url: str, tmp_path: Path
) -> None:
    """Two processes share one PostgreSQL; the one running the server's shard (and personal use's DMs,
    shard 0) dies; the other takes its jobs over when their leases run out."""
    deliveries_sql = "SELECT job_id, image_index, route, state FROM deliveries ORDER BY job_id"
    shared = {
        "DATABASE_URL": pg_url,
        "SHARD_COUNT": "2",
        "JOB_LEASE_SECONDS": str(LEASE),
        "POLL_MAX_INTERVAL": "1.0",
        "LOG_LEVEL": "INFO",
    }
    async with running_fake(token=TOKEN) as fake:
        guild = fake.add_guild("Shard 0 server", shard=(0, 2))
        users = await prepare(fake, await Store.open_url(pg_url), guild)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with (
            victim_process(
                fake, quick_sandbox, tmp_path / "a" / "unused.db", SHARD_IDS="0", **shared
            ) as victim,
            bot_process(fake, quick_sandbox, tmp_path / "b" / "unused.db", SHARD_IDS="1", **shared) as other,
        ):
            await asyncio.gather(wait_healthy(victim, timeout=60), wait_healthy(other, timeout=60))
            await fake.wait_connected(sessions=2, timeout=30)
            await ask_on_every_route(fake, guild, users)
            assert await victim.wait(60) == CRASHED, victim.stderr.decode()[-3000:]
            assert {state for *_, state in pg_rows(pg_url, deliveries_sql)} == {"sending"}
            await wait_for(
                lambda: pg_rows(pg_url, "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NULL") == [(0,)],
                40,
                "every job taken over and recorded as delivered",
            )
            other.process.send_signal(signal.SIGTERM)
            assert await other.wait(20) == 0
        jobs = [(job_id, user) for job_id, user in pg_rows(pg_url, "SELECT id, user_id FROM jobs")]
        check_outcome(fake, users, jobs, pg_rows(pg_url, deliveries_sql))


async def test_a_delivery_cut_off_by_sigterm_is_not_sent_again(
    quick_sandbox: Sandbox, tmp_path: Path
) -> None:
    """SIGTERM while Discord is slow to take a DM and a message only the requester sees: the grace runs
    out, the process stops, and Discord carries both out afterwards. The next start finds the DM in its
    history, and tells the other requester privately, once, instead of sending the image again."""
    db = tmp_path / "bot.db"
    async with running_fake(token=TOKEN) as fake:
        users = await prepare(fake, await Store.open(db), fake.guild_id)
        private = {"dm": users["dm"], "ephemeral": users["ephemeral"]}
        # Longer than the runner's shutdown grace (5 s).
        fake.slow_route("POST", rf"/channels/{fake.dm_channel(users['dm'])}/messages", 7.0)
        fake.slow_route("POST", rf"/webhooks/{fake.application_id}/[^/]+", 7.0)

        def sent_out() -> int:
            return sum(1 for r in fake.requests if r.method == "POST" and r.files)

        async with bot_process(fake, quick_sandbox, db) as first:
            await wait_healthy(first)
            await ask_on_every_route(fake, fake.guild_id, private)
            await wait_for(lambda: sent_out() == 2, 20, "both images on their way to Discord")
            first.process.send_signal(signal.SIGTERM)
            assert await first.wait(20) == 0
        await wait_for(
            lambda: all(r.status == 200 for r in fake.requests if r.files), 10, "Discord took both"
        )
        fake.clear_faults()
        assert sqlite_rows(db, "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NULL") == [(2,)]

        async with bot_process(fake, quick_sandbox, db) as again:
            await wait_healthy(again)
            await wait_for(
                lambda: sqlite_rows(db, "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NULL") == [(0,)],
                30,
                "both jobs recorded as delivered after the restart",
            )
            again.process.send_signal(signal.SIGTERM)
            assert await again.wait(20) == 0
    assert sorted(image_posts_per_job(fake).values()) == [1, 1]
    assert sorted(image_messages_per_job(fake).values()) == [1, 1]
    assert notes_per_user(fake, private) == {"ephemeral": 1}
