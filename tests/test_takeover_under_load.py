"""A process killed with SIGKILL while the others are busy: its poll claims are taken over within
JOB_LEASE_SECONDS + POLL_MAX_INTERVAL, not after the backlog of due polls ahead of them.

Real processes (`python -m bench.mpworker`: the job runner without Discord) on the real PostgreSQL,
against the sandbox on 127.0.0.1. Each follows its share of tasks that never end, each due every
POLL_INTERVAL seconds, with one poll in flight at most and a sandbox slow to answer polls: more polls
are due than the processes make, so ordinary polling is always behind. The victim is killed while it
holds poll claims.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import psycopg
from aiohttp import web

from bench.loadworker import seed_history
from bench.multiproc import Load, Worker, _double_claims, _ready, read_log, workers
from bot.adapters.store import Store
from sandbox.server import Sandbox, SandboxConfig

LEASE = 2.0  # JOB_LEASE_SECONDS
POLL_INTERVAL = 1.5  # the workers poll every task this often: also their POLL_MAX_INTERVAL
JOBS = 150  # in flight over the three processes
POLL_ANSWER = 0.05  # seconds the sandbox takes to answer a poll: one process makes 20 polls/s at most


class SlowPolls(Sandbox):
    """The sandbox, answering each poll after POLL_ANSWER: with one poll in flight per process, the
    processes fall behind on any machine (150 tasks due every 1.5 s: 100 polls/s due, 60 made)."""

    async def _handle_poll(self, request: web.Request) -> web.Response:
        await asyncio.sleep(POLL_ANSWER)
        return await super()._handle_poll(request)


def overdue(url: str) -> int:
    """Running jobs whose poll is overdue by over a second: the backlog of ordinary polling."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM jobs"
            " WHERE status = 'running' AND next_poll_at < EXTRACT(EPOCH FROM now()) - 1"
        ).fetchone()
    return int(row[0]) if row else 0


def claims_of(url: str, owner: str, among: list[int] | None = None) -> list[int]:
    """The running jobs whose poll the owner has claimed (of `among`, if given)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id FROM jobs WHERE lease_owner = %s AND status = 'running'"
            " AND next_poll_at = leased_until AND (%s::bigint[] IS NULL OR id = ANY(%s::bigint[]))",
            [owner, among, among],
        ).fetchall()
    return [int(r[0]) for r in rows]


async def kill_holding_claims(victim: Worker, url: str, owner: str) -> list[int]:
    """Stop the victim (SIGSTOP) at a moment it holds poll claims, read which, then SIGKILL it: the
    claims it held are exactly the ones read, none recorded in between."""
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        if await asyncio.to_thread(claims_of, url, owner):
            victim.process.send_signal(signal.SIGSTOP)
            held = await asyncio.to_thread(claims_of, url, owner)
            victim.process.send_signal(signal.SIGKILL)
            if held:
                return held
            raise AssertionError("the victim's claims ended as it was stopped; try again")
        await asyncio.sleep(0.01)
    raise AssertionError("the victim never held a poll claim")


async def test_a_killed_processs_claims_are_taken_over_within_the_lease_while_the_others_are_behind(
    pg_url: str, tmp_path: Path
) -> None:
    sandbox = SlowPolls(SandboxConfig(duration=1e7, request_log_size=1000))  # tasks that never end
    base_url = await sandbox.start()
    store = await Store.open_url(pg_url)
    try:
        await seed_history(store, [])
    finally:
        await store.close()
    load = Load(JOBS, lease=LEASE, poll_max=POLL_INTERVAL, interval=POLL_INTERVAL, concurrency=1)
    try:
        async with workers(base_url, pg_url, load, tmp_path) as running:
            await asyncio.wait_for(asyncio.gather(*(_ready(w) for w in running)), 60)
            # Wait for a steady backlog of ordinary polling (how soon depends on the machine's speed).
            behind, backlog_by = 0, time.monotonic() + 30.0
            while behind < 30 and time.monotonic() < backlog_by:
                await asyncio.sleep(0.2)
                behind = await asyncio.to_thread(overdue, pg_url)
            victim = running[1]
            owner = read_log(victim.log).owner
            held = await kill_holding_claims(victim, pg_url, owner)
            killed = time.monotonic()
            await victim.process.wait()
            behind = max(behind, await asyncio.to_thread(overdue, pg_url))
            goal = LEASE + POLL_INTERVAL
            taken_after = None
            while time.monotonic() - killed < goal + 15.0:
                if not await asyncio.to_thread(claims_of, pg_url, owner, held):
                    taken_after = time.monotonic() - killed
                    break
                await asyncio.sleep(0.05)
            logs = [read_log(w.log) for w in running]
        assert behind >= 30, f"the survivors were not behind ({behind} polls overdue at the kill)"
        assert taken_after is not None and taken_after <= goal, (
            f"{len(held)} claims taken over after {taken_after} s (goal {goal} s, {behind} polls overdue)"
        )
        assert _double_claims([log.polls for log in logs]) == 0
    finally:
        await sandbox.stop()
