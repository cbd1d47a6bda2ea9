"""Three runner processes sharing one PostgreSQL, with many jobs in flight: polls per second, double
claims, and how long the others take to carry on with the jobs of one killed with SIGKILL.

This process orchestrates and runs the sandbox API (so it can count submits per prompt); the three
`python -m bench.mpworker` processes each submit their share of the jobs and keep it in flight, as
bot processes without Discord would (their sink records outcomes). The server is the throwaway
PostgreSQL of bench/quota_pg.py (or BENCH_DATABASE_URL). After `mp_seconds` of steady state, one
worker is killed at a moment it holds jobs (a poll or a delivery in flight); the failover time runs
from the kill until no unfinished job carries its lease any more: its claims and work taken over, and
every running job it started polled by another process.

Double claims: tasks polled by two processes at overlapping times (each worker logs every poll's
start and end, wall clock, line by line, so the killed one's lines survive). Double submits: prompts
the sandbox received twice. Double deliveries: jobs whose outcome two processes handed over.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import random
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.loadworker import seed_history
from bench.mix import draw
from bench.profiles import Profile
from bench.quota_pg import postgres_server
from bot.adapters.store import Store
from sandbox.server import Sandbox, SandboxConfig, log_uniform

REPO = Path(__file__).resolve().parent.parent
PROCESSES = 3
START_TIMEOUT = 180.0


@dataclass(frozen=True)
class MultiprocResult:
    jobs: int
    lease: float
    poll_max: float
    polls_per_s: float
    double_claims: int
    double_submits: int
    double_deliveries: int
    failover_s: float
    held_taken_s: float
    held_at_kill: int
    commits_per_s: float
    outcomes: int

    def figures(self) -> dict[str, float | None]:
        return {
            "mp_polls_per_s": self.polls_per_s,
            "mp_double_claims": float(self.double_claims),
            "mp_failover_s": self.failover_s,
            "mp_failover_goal_s": self.lease + self.poll_max,
            "mp_double_submits": float(self.double_submits),
            "mp_double_deliveries": float(self.double_deliveries),
            "mp_jobs_in_flight": float(self.jobs),
            "mp_lease_s": self.lease,
            "mp_held_at_kill": float(self.held_at_kill),
            "mp_held_taken_s": self.held_taken_s,
            "mp_pg_commits_per_s": self.commits_per_s,
            "mp_outcomes": float(self.outcomes),
        }


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    log: Path


@contextlib.asynccontextmanager
async def workers(base_url: str, url: str, profile: Profile, folder: Path) -> AsyncIterator[list[Worker]]:
    started: list[Worker] = []
    share = profile.mp_jobs // PROCESSES
    try:
        for n in range(PROCESSES):
            log = folder / f"w{n}.log"
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.mpworker",
                "--name",
                f"w{n}",
                "--base-url",
                base_url,
                "--database-url",
                url,
                "--jobs",
                str(share),
                "--lease",
                str(profile.mp_lease),
                "--poll-max",
                str(profile.mp_poll_max),
                "--log",
                str(log),
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            started.append(Worker(process, log))
        yield started
    finally:
        for worker in started:
            if worker.process.returncode is None:
                worker.process.kill()
            await worker.process.wait()


async def _ready(worker: Worker) -> None:
    assert worker.process.stdout is not None
    while line := await worker.process.stdout.readline():
        if line.strip() == b"ready":
            return
    raise RuntimeError(f"a worker exited before it was ready (exit {worker.process.returncode})")


def _left_with(url: str, owner: str) -> int:
    """Unfinished jobs still carrying the owner's lease: what it held (work, poll claims), and the
    running jobs it started until another process has polled them."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE lease_owner = %s AND delivered_at IS NULL", [owner]
        ).fetchone()
    return int(row[0]) if row else 0


async def _kill_while_holding(victim: Worker, url: str, owner: str, patience: float) -> list[int]:
    """SIGKILL the victim at a moment it holds jobs (a poll or a delivery in flight), if one comes
    within `patience` seconds; returns the ids of those it held."""
    deadline = time.monotonic() + patience
    with psycopg.connect(url) as conn:
        while True:
            rows = await asyncio.to_thread(
                lambda: conn.execute(
                    "SELECT id FROM jobs WHERE lease_owner = %s AND delivered_at IS NULL"
                    " AND (status <> 'running' OR next_poll_at = leased_until)",
                    [owner],
                ).fetchall()
            )
            conn.rollback()  # a fresh snapshot next time
            if rows or time.monotonic() > deadline:
                victim.process.send_signal(signal.SIGKILL)
                return [int(r[0]) for r in rows]


def _still_held(url: str, owner: str, ids: list[int]) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE lease_owner = %s AND delivered_at IS NULL AND id = ANY(%s)",
            [owner, ids],
        ).fetchone()
    return int(row[0]) if row else 0


def _commits(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


Spans = dict[str, list[tuple[float, float]]]


def _read_logs(logs: list[Path]) -> tuple[list[str], list[Spans], list[list[int]]]:
    owners: list[str] = []
    polls: list[Spans] = []
    outcomes: list[list[int]] = []
    for path in logs:
        mine: Spans = collections.defaultdict(list)
        told: list[int] = []
        owner = ""
        for line in path.read_text().splitlines():
            kind, *rest = line.split()
            if kind == "O":
                owner = rest[0]
            elif kind == "P" and len(rest) == 3:
                mine[rest[0]].append((float(rest[1]), float(rest[2])))
            elif kind in ("D", "F") and len(rest) == 2:
                told.append(int(rest[0]))
        owners.append(owner)
        polls.append(mine)
        outcomes.append(told)
    return owners, polls, outcomes


def _double_claims(polls: list[Spans]) -> int:
    """Tasks two processes polled at overlapping times."""
    doubles = 0
    tasks = {task for mine in polls for task in mine}
    for task in tasks:
        spans = sorted((start, end, n) for n, mine in enumerate(polls) for start, end in mine.get(task, ()))
        if any(b[0] < a[1] and a[2] != b[2] for a, b in itertools.pairwise(spans)):
            doubles += 1
    return doubles


async def run_multiproc(profile: Profile) -> MultiprocResult:
    rng = random.Random(profile.seed)
    sampler = log_uniform(profile.mp_duration_low, profile.mp_duration_high)
    sandbox = Sandbox(SandboxConfig(duration_sampler=sampler, seed=profile.seed, request_log_size=None))
    with postgres_server() as server, tempfile.TemporaryDirectory(prefix="bench-mp-") as tmp:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS bench_mp CASCADE")
            conn.execute("CREATE SCHEMA bench_mp")
        url = f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3Dbench_mp"
        store = await Store.open_url(url)  # creates the schema before the workers start
        try:
            await seed_history(store, [draw(rng) for _ in range(profile.mp_history)])
        finally:
            await store.close()
        base_url = await sandbox.start()
        try:
            async with workers(base_url, url, profile, Path(tmp)) as running:
                await asyncio.wait_for(asyncio.gather(*(_ready(w) for w in running)), START_TIMEOUT)
                commits_before = await asyncio.to_thread(_commits, url)
                steady_from = time.time()
                await asyncio.sleep(profile.mp_seconds)  # the steady window whose commits/s are measured
                steady_to = time.time()
                # Statistics reach pg_stat_database within half a second (stats_fetch_consistency).
                commits = await asyncio.to_thread(_commits, url) - commits_before
                victim = running[1]
                owner = _read_logs([victim.log])[0][0]
                held = await _kill_while_holding(victim, url, owner, patience=5.0)
                killed = time.monotonic()
                await victim.process.wait()
                limit = profile.mp_lease + profile.mp_poll_max + 60.0
                held_taken: float | None = None
                while await asyncio.to_thread(_left_with, url, owner):
                    if held_taken is None and not await asyncio.to_thread(_still_held, url, owner, held):
                        held_taken = time.monotonic() - killed
                    if time.monotonic() - killed > limit:
                        raise RuntimeError(f"the victim's jobs were not taken over within {limit:.0f} s")
                    await asyncio.sleep(0.05)
                failover = time.monotonic() - killed
                # The window after the failover is measured too: what is handed over twice in it counts.
                await asyncio.sleep(profile.mp_after)
                for worker in running:
                    if worker.process.returncode is None:
                        worker.process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(asyncio.gather(*(w.process.wait() for w in running)), 30.0)
                _, polls, outcomes = _read_logs([w.log for w in running])
        finally:
            await sandbox.stop()
    in_window = sum(
        1
        for mine in polls
        for spans in mine.values()
        for start, _ in spans
        if steady_from <= start < steady_to
    )
    submits = collections.Counter(
        r.json["prompt"] for r in sandbox.requests if r.method == "POST" and r.path == "/xai/images"
    )
    told = collections.Counter(job_id for mine in outcomes for job_id in set(mine))
    return MultiprocResult(
        jobs=profile.mp_jobs // PROCESSES * PROCESSES,
        lease=profile.mp_lease,
        poll_max=profile.mp_poll_max,
        polls_per_s=in_window / (steady_to - steady_from),
        double_claims=_double_claims(polls),
        double_submits=sum(1 for count in submits.values() if count > 1),
        double_deliveries=sum(1 for count in told.values() if count > 1),
        failover_s=failover,
        held_taken_s=failover if held_taken is None else held_taken,
        held_at_kill=len(held),
        commits_per_s=commits / (steady_to - steady_from),
        outcomes=sum(told.values()),
    )
