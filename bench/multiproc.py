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
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.loadworker import seed_history
from bench.mix import draw
from bench.profiles import Profile
from bench.quota_pg import postgres_server
from bench.stats import percentile
from bot.adapters.store import Store
from sandbox.server import Sandbox, SandboxConfig, log_uniform

REPO = Path(__file__).resolve().parent.parent
PROCESSES = 3
START_TIMEOUT = 180.0


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    log: Path
    drain: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class Load:
    """One multi-process run: jobs in flight in all, over how many processes, the lease and
    POLL_MAX_INTERVAL, seconds of steady state measured (after `warmup`), seconds after the take-over.
    `interval` > 0 makes every worker a fixed poller (the poll-cost run); `kill` False skips the SIGKILL."""

    jobs: int
    processes: int = PROCESSES
    lease: float = 10.0
    poll_max: float = 15.0
    seconds: float = 20.0
    warmup: float = 0.0
    after: float = 2.0
    interval: float = 0.0
    kill: bool = True
    concurrency: int = 0  # polls in flight per process at most (0: the runner's default)

    @classmethod
    def of(cls, profile: Profile) -> Load:
        return cls(
            profile.mp_jobs,
            lease=profile.mp_lease,
            poll_max=profile.mp_poll_max,
            seconds=profile.mp_seconds,
            after=profile.mp_after,
        )


@contextlib.asynccontextmanager
async def workers(base_url: str, url: str, load: Load, folder: Path) -> AsyncIterator[list[Worker]]:
    started: list[Worker] = []
    share = load.jobs // load.processes
    try:
        for n in range(load.processes):
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
                str(load.lease),
                "--poll-max",
                str(load.poll_max),
                "--interval",
                str(load.interval),
                "--concurrency",
                str(load.concurrency),
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
            if worker.drain is not None:
                await worker.drain


async def _ready(worker: Worker) -> None:
    """Until the worker says "ready"; from then on its output goes on to a file beside its log (a
    pipe nobody reads fills up, and a worker writing a log line into it would stop dead)."""
    out = worker.process.stdout
    assert out is not None
    while line := await out.readline():
        if line.strip() == b"ready":
            worker.drain = asyncio.create_task(_keep(out, worker.log.with_suffix(".out")))
            return
    raise RuntimeError(f"a worker exited before it was ready (exit {worker.process.returncode})")


async def _keep(stream: asyncio.StreamReader, path: Path) -> None:
    with path.open("ab") as kept:
        while chunk := await stream.read(65536):
            kept.write(chunk)


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


def _left_by_status(url: str, owner: str) -> list[tuple[object, ...]]:
    """(status, jobs, seconds to the soonest next poll, seconds to the soonest lease end) of what the
    owner still holds."""
    with psycopg.connect(url) as conn:
        return list(
            conn.execute(
                "SELECT status, COUNT(*), MIN(next_poll_at) - EXTRACT(EPOCH FROM now()),"
                " MIN(leased_until) - EXTRACT(EPOCH FROM now()) FROM jobs"
                " WHERE lease_owner = %s AND delivered_at IS NULL GROUP BY status",
                [owner],
            ).fetchall()
        )


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


@dataclass
class WorkerLog:
    """What one worker wrote: its lease owner, its polls (task -> wall-clock spans), the tasks it saw
    end (task -> monotonic time), the jobs it handed over, and its meter lines (wall time, CPU
    seconds, event-loop lag samples in ms)."""

    owner: str = ""
    polls: Spans = field(default_factory=lambda: collections.defaultdict(list))
    ended: dict[str, float] = field(default_factory=dict)
    told: list[int] = field(default_factory=list)
    posted: list[int] = field(default_factory=list)
    meter: list[tuple[float, float, list[float]]] = field(default_factory=list)

    def cpu_between(self, start: float, end: float) -> float:
        inside = [(at, cpu) for at, cpu, _ in self.meter if start <= at <= end]
        return inside[-1][1] - inside[0][1] if len(inside) > 1 else 0.0

    def lag_between(self, start: float, end: float) -> list[float]:
        return [lag for at, _, lags in self.meter if start <= at <= end for lag in lags]


def read_log(path: Path) -> WorkerLog:
    found = WorkerLog()
    for line in path.read_text().splitlines():
        kind, *rest = line.split()
        if kind == "O":
            found.owner = rest[0]
        elif kind == "P" and len(rest) == 3:
            found.polls[rest[0]].append((float(rest[1]), float(rest[2])))
        elif kind == "C" and len(rest) == 2:
            found.ended.setdefault(rest[0], float(rest[1]))
        elif kind in ("D", "F") and len(rest) == 2:
            found.told.append(int(rest[0]))
            if kind == "D":
                found.posted.append(int(rest[0]))
        elif kind == "M" and len(rest) in (2, 3):
            lags = [float(x) for x in rest[2].split(",")] if len(rest) == 3 else []
            found.meter.append((float(rest[0]), float(rest[1]), lags))
    return found


def _double_claims(polls: list[Spans]) -> int:
    """Tasks two processes polled at overlapping times."""
    doubles = 0
    tasks = {task for mine in polls for task in mine}
    for task in tasks:
        spans = sorted((start, end, n) for n, mine in enumerate(polls) for start, end in mine.get(task, ()))
        if any(b[0] < a[1] and a[2] != b[2] for a, b in itertools.pairwise(spans)):
            doubles += 1
    return doubles


def postgres_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL server behind `url` (its postmaster and every process
    it started), read from /proc: the server runs on this machine in every benchmark run."""
    with psycopg.connect(url) as conn:  # its parent is the postmaster (read while it lives)
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        postmaster = _stat(int(row[0]))[1]
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(entry.name)
                cpu, parent = _stat(pid)
                if postmaster in (pid, parent):
                    total += cpu
    return total


def _stat(pid: int) -> tuple[float, int]:
    """(CPU seconds, parent pid) of a process."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[1])


@dataclass(frozen=True)
class LoadResult:
    load: Load
    polls_per_s: float
    double_claims: int
    double_submits: int
    double_deliveries: int
    """Outcomes (images or failures) two processes handed over."""
    images_twice: int
    """Images two processes posted (after looking for an earlier post, as the bot does)."""
    failover_s: float | None
    held_taken_s: float | None
    held_at_kill: int
    commits_per_s: float
    outcomes: int
    runner_cpu_per_poll_ms: float
    """CPU time of the runner processes per poll, everything they did in the window included."""
    postgres_cpu_per_poll_ms: float
    sandbox_cpu_per_poll_ms: float
    """The orchestrating process: the sandbox API, and this benchmark's own few queries."""
    runner_cpu_per_s: float
    """Cores the runner processes used, in all."""
    overhead_p95_s: float | None
    """Task finished (the sandbox's clock) -> a poll saw it, for the tasks seen in the window."""
    overhead_p50_s: float | None
    polls_per_task: float | None
    """Polls of the tasks that were submitted and finished within the run, per task."""
    mean_duration_s: float | None
    loop_lag_p99_ms: list[float]
    """Per process, over the steady window and the take-over."""


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


@contextlib.asynccontextmanager
async def fresh_schema(name: str) -> AsyncIterator[str]:
    """A URL of the benchmark's PostgreSQL whose tables live in a schema of their own, created empty."""
    with postgres_server() as server:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            conn.execute(f"CREATE SCHEMA {name}")
        url = f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3D{name}"
        store = await Store.open_url(url)  # creates the tables before any worker starts
        await store.close()
        yield url


async def run_load(load: Load, sandbox: Sandbox, url: str, history: list[float]) -> LoadResult:
    """Start `load.processes` workers on `url` against the (started) sandbox, measure a steady window,
    then SIGKILL one of them (unless `load.kill` is False) and time the take-over."""
    store = await Store.open_url(url)
    try:
        await seed_history(store, history)
    finally:
        await store.close()
    assert sandbox.base_url is not None
    failover: float | None = None
    held_taken: float | None = None
    held: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-mp-") as tmp:
        async with workers(sandbox.base_url, url, load, Path(tmp)) as running:
            ready_limit = max(START_TIMEOUT, load.jobs / 20.0)  # the intake of 10,000 jobs takes a while
            await asyncio.wait_for(asyncio.gather(*(_ready(w) for w in running)), ready_limit)
            submitted_from = time.monotonic()  # tasks created from here on are the steady ones
            await asyncio.sleep(load.warmup)
            commits_before = await asyncio.to_thread(_commits, url)
            pg_before, sandbox_before = await asyncio.to_thread(postgres_cpu, url), time.process_time()
            steady_from, steady_mono = time.time(), time.monotonic()
            await asyncio.sleep(load.seconds)  # the steady window whose rates are measured
            steady_to, steady_mono_to = time.time(), time.monotonic()
            pg_used = await asyncio.to_thread(postgres_cpu, url) - pg_before
            sandbox_used = time.process_time() - sandbox_before
            # Statistics reach pg_stat_database within half a second (stats_fetch_consistency).
            commits = await asyncio.to_thread(_commits, url) - commits_before
            if load.kill:
                victim = running[1 % len(running)]
                owner = read_log(victim.log).owner
                held = await _kill_while_holding(victim, url, owner, patience=5.0)
                killed = time.monotonic()
                await victim.process.wait()
                limit = load.lease + load.poll_max + 60.0
                while await asyncio.to_thread(_left_with, url, owner):
                    if held_taken is None and not await asyncio.to_thread(_still_held, url, owner, held):
                        held_taken = time.monotonic() - killed
                    if time.monotonic() - killed > limit:
                        # A finding, not a failure of the benchmark: say what is left, and go on.
                        left = await asyncio.to_thread(_left_by_status, url, owner)
                        print(f"[bench] not taken over within {limit:.0f} s: {left}", file=sys.stderr)
                        break
                    await asyncio.sleep(0.05)
                else:
                    failover = time.monotonic() - killed
                    held_taken = failover if held_taken is None else held_taken
                # The window after the failover is measured too: what is handed over twice in it counts.
                await asyncio.sleep(load.after)
            measured_to = time.time()
            for worker in running:
                if worker.process.returncode is None:
                    worker.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.gather(*(w.process.wait() for w in running)), 30.0)
            except TimeoutError:  # an overloaded worker: its log lines are written already
                print("[bench] a worker did not stop within 30 s of SIGTERM; killed", file=sys.stderr)
            logs = [read_log(w.log) for w in running]
    polls = [log.polls for log in logs]
    in_window = sum(
        1
        for mine in polls
        for spans in mine.values()
        for start, _ in spans
        if steady_from <= start < steady_to
    )
    span = steady_to - steady_from
    runner_cpu = sum(log.cpu_between(steady_from, steady_to) for log in logs)
    per_poll = 1000.0 / max(1, in_window)
    # The schedule's overhead: how long after its end a poll saw each task that ended in the window.
    ends = {task: at for log in logs for task, at in log.ended.items()}
    overheads, counts, durations = [], [], []
    for task, seen in ends.items():
        made = sandbox.tasks.get(task)
        finished = None if made is None else made.finished_clock
        if made is None or finished is None:
            continue
        if steady_mono <= seen < steady_mono_to:
            overheads.append(max(0.0, seen - finished))
        if made.created_clock >= submitted_from:
            counts.append(sum(len(log.polls.get(task, ())) for log in logs))
            durations.append(made.duration)
    submits = collections.Counter(
        r.json["prompt"] for r in sandbox.requests if r.method == "POST" and r.path == "/xai/images"
    )
    told = collections.Counter(job_id for log in logs for job_id in set(log.told))
    posted = collections.Counter(job_id for log in logs for job_id in set(log.posted))
    lags = [log.lag_between(steady_from, measured_to) for log in logs]
    return LoadResult(
        load=load,
        polls_per_s=in_window / span,
        double_claims=_double_claims(polls),
        double_submits=sum(1 for count in submits.values() if count > 1),
        double_deliveries=sum(1 for count in told.values() if count > 1),
        images_twice=sum(1 for count in posted.values() if count > 1),
        failover_s=failover,
        held_taken_s=held_taken,
        held_at_kill=len(held),
        commits_per_s=commits / span,
        outcomes=sum(told.values()),
        runner_cpu_per_poll_ms=runner_cpu * per_poll,
        postgres_cpu_per_poll_ms=pg_used * per_poll,
        sandbox_cpu_per_poll_ms=sandbox_used * per_poll,
        runner_cpu_per_s=runner_cpu / span,
        overhead_p95_s=percentile(overheads, 95) if overheads else None,
        overhead_p50_s=percentile(overheads, 50) if overheads else None,
        polls_per_task=sum(counts) / len(counts) if counts else None,
        mean_duration_s=sum(durations) / len(durations) if durations else None,
        loop_lag_p99_ms=[percentile(lag, 99) if lag else 0.0 for lag in lags],
    )


async def run_multiproc(profile: Profile) -> MultiprocResult:
    rng = random.Random(profile.seed)
    sampler = log_uniform(profile.mp_duration_low, profile.mp_duration_high)
    sandbox = Sandbox(SandboxConfig(duration_sampler=sampler, seed=profile.seed, request_log_size=None))
    load = Load.of(profile)
    async with fresh_schema("bench_mp") as url:
        await sandbox.start()
        try:
            result = await run_load(load, sandbox, url, [draw(rng) for _ in range(profile.mp_history)])
        finally:
            await sandbox.stop()
    if result.failover_s is None or result.held_taken_s is None:
        raise RuntimeError("the killed worker's jobs were not taken over")
    return MultiprocResult(
        jobs=load.jobs // load.processes * load.processes,
        lease=load.lease,
        poll_max=load.poll_max,
        polls_per_s=result.polls_per_s,
        double_claims=result.double_claims,
        double_submits=result.double_submits,
        double_deliveries=result.double_deliveries,
        failover_s=result.failover_s,
        held_taken_s=result.held_taken_s,
        held_at_kill=result.held_at_kill,
        commits_per_s=result.commits_per_s,
        outcomes=result.outcomes,
    )
