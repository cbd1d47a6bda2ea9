"""Three real `python -m bot` processes sharing one PostgreSQL, each running one shard of three, against
one sharded fake Discord and the sandbox API: every image is made once and posted once, and when one
process is killed (SIGKILL) the other two finish its jobs within the lease, with nothing sent or posted
twice.

The quota race across processes is not here: Discord sends every interaction of one server to the one
shard (so the one process) that runs the server, so simultaneous requests of one member never meet in
two processes through the gateway. The contract test `test_fifty_admissions_over_three_pools_start_
exactly_the_quota` holds that promise where it lives, in the store, with three connection pools.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.core.runner import MSG_INTERRUPTED
from bot.core.texts import from_stored
from sandbox.server import Sandbox, SandboxConfig, log_uniform
from testing.fake_discord import FakeDiscord, running_fake
from tests.helpers import wait_until
from tests.test_operations import API_KEY, TOKEN, BotProcess, bot_process, get, wait_healthy
from tests.test_sharding import guilds_on_shards

PROCESSES = 3
LEASE = 3.0  # JOB_LEASE_SECONDS: short, so a takeover happens within the test
POLL_MAX = 1.0  # POLL_MAX_INTERVAL
FILE_NAME = re.compile(r"imagine-(\d+)-\d+\.")


@pytest.fixture
async def keyed_sandbox() -> AsyncIterator[Sandbox]:
    server = Sandbox(SandboxConfig(duration=0.5, seed=11, api_key=API_KEY))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def three_processes(
    fake: FakeDiscord, sandbox: Sandbox, pg_url: str, tmp_path: Path
) -> AsyncIterator[list[BotProcess]]:
    async with contextlib.AsyncExitStack() as stack:
        bots = []
        for shard in range(PROCESSES):
            home = tmp_path / f"p{shard}"
            home.mkdir()
            bots.append(
                await stack.enter_async_context(
                    bot_process(
                        fake,
                        sandbox,
                        home / "unused.db",
                        DATABASE_URL=pg_url,
                        SHARD_COUNT=str(PROCESSES),
                        SHARD_IDS=str(shard),
                        JOB_LEASE_SECONDS=str(LEASE),
                        POLL_MAX_INTERVAL=str(POLL_MAX),
                        LOG_LEVEL="INFO",
                    )
                )
            )
        await asyncio.gather(*(wait_healthy(bot, timeout=60) for bot in bots))
        await fake.wait_connected(sessions=PROCESSES, timeout=30)
        yield bots


def members_on_shards(fake: FakeDiscord, count: int) -> list[tuple[int, int]]:
    """`count` (guild, member) pairs spread over one server per shard: each member asks once, so no
    quota stands in the way."""
    guilds = guilds_on_shards(fake, PROCESSES)
    return [
        (gid, fake.add_member(gid, username=f"m{n}")) for n in range(count) for gid in [guilds[n % PROCESSES]]
    ]


async def send_requests(fake: FakeDiscord, who: list[tuple[int, int]], per_second: float) -> None:
    for n, (gid, uid) in enumerate(who):
        await fake.invoke_slash("imagine", {"prompt": f"request {n}"}, guild_id=gid, user_id=uid)
        await asyncio.sleep(1 / per_second)  # the arrival rate under test, not a wait for anything


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql, params).fetchall())


async def quiet(fake: FakeDiscord, bots: list[BotProcess]) -> None:
    """Every living process reports nothing in flight (no submit, poll or delivery, on /metrics), and
    then Discord has no request in flight: a duplicate would be under way or made by now."""

    async def idle() -> bool:
        for bot in bots:
            if bot.process.returncode is None:
                text = (await get(bot.metrics_url + "/metrics"))[1]
                if "\nimagine_jobs_in_flight 0.0\n" not in text:
                    return False
        return True

    await wait_until(idle, "every process to have nothing in flight", timeout=30, interval=0.1)
    await fake.wait_idle()


async def wait_until_all_told(url: str, count: int, timeout: float) -> None:
    async def all_told() -> bool:
        [(told,)] = await asyncio.to_thread(
            query, url, "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NOT NULL"
        )
        return bool(told >= count)

    def left() -> str:
        rows = query(
            url,
            "SELECT id, status, lease_owner, leased_until - EXTRACT(EPOCH FROM now()), delivery,"
            " delivery_attempts FROM jobs WHERE delivered_at IS NULL",
        )
        return f"all {count} jobs to be told ({len(rows)} not told: {rows})"

    await wait_until(all_told, left, timeout, interval=0.2)


def image_posts_per_job(fake: FakeDiscord) -> collections.Counter[int]:
    """How many requests carrying a job's image the bot made (any route, answered 200)."""
    posts: collections.Counter[int] = collections.Counter()
    for r in fake.requests:
        if r.method in ("POST", "PATCH") and r.files and r.status == 200:
            posts.update({int(m.group(1)) for f in r.files if (m := FILE_NAME.match(f.filename))})
    return posts


def image_messages_per_job(fake: FakeDiscord) -> collections.Counter[int]:
    """How many messages members can see carry a job's image."""
    shown: collections.Counter[int] = collections.Counter()
    for message in fake.messages.values():
        names = [a.get("filename", "") for a in message.get("attachments", [])]
        shown.update({int(m.group(1)) for name in names if (m := FILE_NAME.match(name))})
    return shown


def submits_per_prompt(sandbox: Sandbox) -> collections.Counter[str]:
    return collections.Counter(
        r.json["prompt"] for r in sandbox.requests if r.method == "POST" and r.path == "/xai/images"
    )


async def stop_all(bots: list[BotProcess]) -> None:
    for bot in bots:
        if bot.process.returncode is None:
            bot.process.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(bot.wait(20) for bot in bots))
    assert all(code in (0, -signal.SIGKILL) for code in codes), codes


@pytest.mark.timeout(180)  # three bot processes and 200 jobs: ~10 s alone, more on a loaded machine
async def test_two_hundred_jobs_from_three_shards_are_each_made_and_posted_once(
    keyed_sandbox: Sandbox, pg_url: str, tmp_path: Path
) -> None:
    count = 200
    async with running_fake(token=TOKEN) as fake:
        who = members_on_shards(fake, count)
        async with three_processes(fake, keyed_sandbox, pg_url, tmp_path) as bots:
            await send_requests(fake, who, per_second=100)
            await wait_until_all_told(pg_url, count, timeout=60)
            await quiet(fake, bots)
            await stop_all(bots)
        rows = query(pg_url, "SELECT id, status, guild_id, prompt FROM jobs ORDER BY id")

    assert len(rows) == count and {status for _, status, _, _ in rows} == {"delivered"}
    # Each shard's server was heard (by its own process) and its requests admitted.
    by_guild = collections.Counter(gid for _, _, gid, _ in rows)
    assert sorted(by_guild.values()) == [66, 67, 67]
    assert submits_per_prompt(keyed_sandbox) == {f"request {n}": 1 for n in range(count)}
    assert image_posts_per_job(fake) == {job_id: 1 for job_id, _, _, _ in rows}
    assert image_messages_per_job(fake) == {job_id: 1 for job_id, _, _, _ in rows}


@pytest.mark.timeout(180)  # three bot processes, a kill and a takeover: ~13 s alone
async def test_a_killed_process_s_jobs_are_finished_by_the_others_within_the_lease(
    pg_url: str, tmp_path: Path
) -> None:
    count = 60
    # Long enough that the victim is still following its jobs when it dies, and spread out, so that
    # some of its jobs have finished (their posts held up by a slow Discord) while others still run.
    sandbox = Sandbox(SandboxConfig(duration_sampler=log_uniform(1.0, 8.0), seed=13, api_key=API_KEY))
    await sandbox.start()
    try:
        async with running_fake(token=TOKEN) as fake:
            who = members_on_shards(fake, count)
            # Discord is slow to take the victim's image posts: it dies holding finished jobs whose
            # post may or may not have been made (it is, later: the others must not post again).
            victim_channel = fake.guilds[who[1][0]].channel_ids[0]
            fake.slow_route("POST", f"/channels/{victim_channel}/messages", 4.0)
            async with three_processes(fake, sandbox, pg_url, tmp_path) as bots:
                victim = bots[1]
                owner = f"%:{victim.process.pid}:%"
                await send_requests(fake, who, per_second=40)
                # Kill the victim once it holds a finished job in delivery and a poll claim.
                await wait_until(
                    lambda: (
                        {"completed", "running"}
                        <= {
                            status
                            for (status,) in query(
                                pg_url,
                                "SELECT status FROM jobs WHERE lease_owner LIKE %s AND (status = 'completed'"
                                " OR next_poll_at > EXTRACT(EPOCH FROM now()))",
                                (owner,),
                            )
                        }
                    ),
                    "the victim to hold a finished job and a poll claim",
                    timeout=20,
                    interval=0.05,
                )
                victim.process.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                fake.clear_faults()  # the posts already in Discord's hands are still made, later
                await victim.wait(10)
                held = query(
                    pg_url,
                    "SELECT id, status FROM jobs WHERE lease_owner LIKE %s AND delivered_at IS NULL",
                    (owner,),
                )
                # The takeover: until no unfinished job is left in the dead process's hands.
                await wait_until(
                    lambda: (
                        not query(
                            pg_url,
                            "SELECT 1 FROM jobs WHERE lease_owner LIKE %s AND delivered_at IS NULL",
                            (owner,),
                        )
                    ),
                    "the dead process's unfinished jobs to be taken over",
                    timeout=30,
                    interval=0.05,
                )
                takeover = time.monotonic() - killed_at
                try:
                    await wait_until_all_told(pg_url, count, timeout=40)
                except TimeoutError:
                    for n, bot in enumerate(bots):  # for whoever reads the failure
                        (tmp_path / f"process-{n}.log").write_bytes(bytes(bot.stderr))
                    raise
                await quiet(fake, bots)
                await stop_all(bots)
            rows = query(pg_url, "SELECT id, status, prompt, error FROM jobs ORDER BY id")
    finally:
        await sandbox.stop()

    print(f"killed holding {len(held)} jobs ({collections.Counter(s for _, s in held)}); "
          f"taken over in {takeover:.2f} s")  # fmt: skip
    assert held, "the victim held no job when it was killed"
    # Within the lease, one round of the survivors' lease loop (a quarter lease) and one poll interval,
    # plus slack for this loaded machine.
    assert takeover <= LEASE + LEASE / 4 + POLL_MAX + 3.0
    assert len(rows) == count
    submits = submits_per_prompt(sandbox)
    posts = image_messages_per_job(fake)
    assert max(submits.values()) == 1 and max(posts.values()) == 1  # nothing sent or posted twice
    for job_id, status, prompt, error in rows:
        if status == "delivered":
            assert (submits[prompt], posts[job_id]) == (1, 1), job_id
        else:
            # Only a submit cut off by the kill, whose outcome nobody can know: told, never resent.
            assert (status, from_stored(error), posts[job_id]) == ("unknown", MSG_INTERRUPTED, 0), job_id
    assert sum(status == "delivered" for _, status, _, _ in rows) >= count - 3
