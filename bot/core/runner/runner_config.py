"""The runner's tuning: time limits, concurrency, retries. The lease is not here: it is the store's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunnerConfig:
    time_limit: float = 600.0
    # Polls in flight at once. One process makes at most concurrency / (a poll's round trip + its
    # record) polls a second whatever its CPU: at 16 and a 100 ms round trip, 160 polls/s, about 600
    # tasks in flight of the 5-90 s mix (docs/performance.md, "Capacity").
    concurrency: int = 64
    max_result_bytes: int = 50 * 1024 * 1024
    status_update_interval: float = 3.0
    submit_attempts: int = 3
    submit_backoff: float = 2.0
    idle_wait: float = 30.0
    takeover_batch: int = 100  # jobs taken over at once; a full batch is followed by another at once
    shutdown_grace: float = 5.0
    download_attempts: int = 3
    download_timeout: float = 60.0  # one attempt at one image
    delivery_concurrency: int = 8  # deliveries (downloads and upload) at once, apart from the polls
    delivery_deadline: float = 120.0  # all of one job's downloads together
    max_result_pixels: int = 16_000_000
    # Database writes after a submit are retried while the database is busy or full: the task id until
    # it is recorded, a delivery `record_attempts` times (real seconds, doubling up to the maximum).
    record_backoff: float = 0.05
    record_backoff_max: float = 5.0
    record_attempts: int = 8
    tell_attempts: int = 3
    tell_backoff: float = 2.0  # seconds before the second sink attempt; doubled for the third
    tell_timeout: float = 120.0  # one sink call; a hung one counts as failed
    # When telling the requester failed every way, try again after these many seconds (the bot sets
    # some; the terminal and the benchmark give up at once), then mark the job undeliverable.
    redeliver_delays: tuple[float, ...] = ()
    history_size: int = 400  # what the poll schedule learns from (bench.mixes: 200 was noisier)
    eta_window: int = 50  # the ETA members see: the median of the latest jobs of the kind
    outage_failures: int = 3  # failed requests in a row, across jobs, that make an outage
    outage_queue_limit: float = 300.0  # how long a new request waits for the service to come back
