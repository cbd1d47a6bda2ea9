"""How big each run is. `full` is what `make bench` runs; `quick` must finish within a minute on two
cores; `smoke` only proves that every scenario still runs (the test suite uses it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # /imagine acknowledgements: `ack_rounds` bursts of `ack_burst` simultaneous invocations.
    ack_burst: int
    ack_rounds: int
    # Completion overhead: one Poisson stream into both runners; its first `warmup_seconds` warm up.
    time_factor: float
    """Virtual seconds per real second for the duration mix (ScaledClock)."""
    warmup_seconds: float
    """Virtual seconds of arrivals before measuring. The stream is steady only once the longest job
    (90 s) has had time to finish and the runner's 50-job history has been refreshed after that."""
    measured_jobs: int
    arrival_rate: float
    """Jobs per virtual second, per runner: 2/s keeps about 60 jobs in flight in each."""
    # Event-loop lag with many jobs in flight, in real time in a separate process.
    loop_jobs: int
    loop_seconds: float
    # Quota check + reservation against a usage table of `quota_rows` rows (SQLite and PostgreSQL).
    quota_rows: int
    quota_users: int
    quota_samples: int
    # /history pages of one member with `history_rows` posted images.
    history_rows: int = 300_000
    history_samples: int = 600
    # The web gallery's pages and searches among `gallery_rows` posted images (SQLite and PostgreSQL).
    gallery_rows: int = 1_000_000
    gallery_samples: int = 400
    # An outage of `outage_seconds` with `outage_jobs` in flight; time scaled by `outage_time_factor`.
    outage_jobs: int = 1000
    outage_seconds: float = 60.0
    outage_time_factor: float = 1.0
    # The poll schedule on four job mixes, simulated (bench.mixes): jobs per mix.
    mix_jobs: int = 4000
    mix_runs: int = 3
    seed: int = 20240601
    # Memory: one result PNG of this many pixels a side (over the pixel limit), one at the limit (16 MP,
    # the default MAX_RESULT_MEGAPIXELS), and one status answer of this many MB.
    memory_png_side: int = 13_000
    memory_limit_side: int = 4_000
    memory_answer_mb: int = 400
    # Three runner processes on one PostgreSQL (bench.multiproc): jobs in flight in all, seconds of
    # steady state before one is killed, JOB_LEASE_SECONDS, POLL_MAX_INTERVAL, the sandbox's task
    # durations, finished jobs the schedule starts from, seconds run after the takeover.
    mp_jobs: int = 1000
    mp_seconds: float = 20.0
    mp_lease: float = 10.0
    mp_poll_max: float = 15.0
    mp_duration_low: float = 5.0
    mp_duration_high: float = 90.0
    mp_history: int = 400
    mp_after: float = 2.0
    # A job whose image is on a fast host, timed this many times alone and beside eight trickling jobs.
    fairness_rounds: int = 5
    # Capacity (bench.capacity): tasks that never end polled every second by one process for
    # `cap_cost_seconds`; then each load of `cap_loads` (tasks in flight over three processes, with the
    # mp_ lease, poll maximum and durations) measured for `cap_seconds` after `cap_warmup`.
    cap_cost_jobs: int = 1500
    cap_cost_seconds: float = 15.0
    cap_loads: tuple[int, ...] = (1000, 2000, 5000, 10000)
    cap_seconds: float = 30.0
    cap_warmup: float = 20.0


FULL = Profile(
    "full",
    ack_burst=50,
    ack_rounds=3,
    time_factor=10.0,
    warmup_seconds=150.0,
    measured_jobs=200,
    arrival_rate=2.0,
    loop_jobs=1000,
    loop_seconds=15.0,
    quota_rows=1_000_000,
    quota_users=10_000,
    quota_samples=1000,
)
QUICK = Profile(
    "quick",
    ack_burst=50,
    ack_rounds=1,
    time_factor=15.0,
    warmup_seconds=150.0,
    measured_jobs=100,
    arrival_rate=2.0,
    loop_jobs=1000,
    loop_seconds=8.0,
    quota_rows=1_000_000,
    quota_users=10_000,
    quota_samples=500,
    outage_seconds=20.0,
    mix_jobs=2000,
    mix_runs=2,
    mp_seconds=8.0,
    mp_lease=5.0,
    cap_cost_seconds=8.0,
    cap_loads=(1000, 2000, 5000),
    cap_seconds=15.0,
    cap_warmup=10.0,
)
SMOKE = Profile(
    "smoke",
    ack_burst=5,
    ack_rounds=1,
    time_factor=60.0,
    warmup_seconds=20.0,
    measured_jobs=10,
    arrival_rate=2.0,
    loop_jobs=50,
    loop_seconds=1.5,
    quota_rows=20_000,
    quota_users=500,
    quota_samples=50,
    memory_png_side=4_500,
    memory_limit_side=1_500,
    memory_answer_mb=40,
    history_rows=5_000,
    history_samples=30,
    gallery_rows=3_000,
    gallery_samples=20,
    outage_jobs=50,
    outage_time_factor=30.0,
    mix_jobs=500,
    mix_runs=1,
    mp_jobs=60,
    mp_seconds=1.0,
    mp_lease=2.0,
    mp_poll_max=1.0,
    mp_duration_low=1.0,
    mp_duration_high=3.0,
    mp_history=20,
    mp_after=0.5,
    fairness_rounds=1,
    cap_cost_jobs=60,
    cap_cost_seconds=1.5,
    cap_loads=(30,),
    cap_seconds=1.5,
    cap_warmup=0.5,
)
