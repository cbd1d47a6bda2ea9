"""The table printed at the end of a run, and the results file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

Figures = Mapping[str, float | None]


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    digits: int
    target: float | None = None
    """Upper bound the figure should stay within; None for figures shown for comparison only."""


# Every key here is written to the results file, as null when it could not be measured.
ROWS: tuple[Row, ...] = (
    Row("ack_p99_ms", "/imagine ack p99, 50 simultaneous", "ms", 1, 100),
    Row("overhead_p95_s", "completion overhead p95, adaptive", "s", 2, 1.0),
    Row("polls_per_job", "polls per job, adaptive", "", 2, 8),
    Row("fixed5_overhead_p95_s", "completion overhead p95, fixed 5 s", "s", 2),
    Row("fixed5_polls_per_job", "polls per job, fixed 5 s", "", 2),
    Row("loop_lag_p99_ms_1000", "event-loop lag p99, jobs in flight", "ms", 1, 20),
    Row("rss_mb_1000", "peak RSS, jobs in flight", "MB", 1, 150),
    Row("quota_check_p99_ms_1m", "quota check p99, 1M usage rows", "ms", 2, 5),
    Row("quota_check_pg_p99_ms_1m", "quota check p99, 1M rows, PostgreSQL", "ms", 2, 5),
    Row("rss_mb_huge_png", "peak RSS, delivering a 13000² PNG", "MB", 1, 300),
    Row("rss_mb_huge_answer", "peak RSS, polling a 400 MB answer", "MB", 1, 300),
    Row("rss_mb_limit_png", "peak RSS, re-encoding a 16 MP PNG", "MB", 1, 300),
    Row("history_page_p99_ms_300k", "/history page p99, 300k images", "ms", 2, 10),
    Row("gallery_page_p95_ms", "gallery page p95, 1M images", "ms", 2, 50),
    Row("gallery_search_p95_ms", "gallery prompt search p95, 1M images", "ms", 2, 100),
    Row("gallery_page_pg_p95_ms", "gallery page p95, 1M images, PostgreSQL", "ms", 2, 50),
    Row("gallery_search_pg_p95_ms", "gallery prompt search p95, 1M, PostgreSQL", "ms", 2, 100),
    Row("gallery_lcp_p95_ms", "gallery largest contentful paint p95, Chromium", "ms", 0, 1000),
    Row("gallery_page_kb", "gallery page before its images", "KB", 1, 200),
    Row("rules_check_p99_ms_500", "prompt-rule check p99, 500 rules", "ms", 2, 5),
    Row("rules_check_p99_ms_1000", "prompt-rule check p99, 1000 rules", "ms", 2, 5),
    Row("rules_ack_others_max_ms", "others' ack max, 8 hostile prompts", "ms", 0, 1000),
    Row("outage_requests_per_s", "requests/s to the API during an outage", "/s", 2, 1),
    # POLL_MAX_INTERVAL (15 s) + 1 s
    Row("outage_recovery_max_s", "after an outage: finished -> delivered, max", "s", 2, 16),
    # A fast host's job beside eight trickling ones, minus the same job alone: no slot to wait for.
    Row("delivery_fast_host_delay_s", "fast host's job delayed by 8 slow ones", "s", 2, 1.0),
    Row("mix_worst_vs_oracle", "schedule p95 / best possible, worst mix", "x", 2, 1.1),
    Row("mix_switch_window2_vs_oracle", "the same, jobs 100-200 after a switch", "x", 2, 1.1),
    Row("mp_polls_per_s", "polls/s, 3 processes, 1000 jobs, PostgreSQL", "/s", 1),
    Row("mp_double_claims", "tasks polled by two processes at once", "", 0, 0),
    # JOB_LEASE_SECONDS as `make bench` sets it (10 s) + POLL_MAX_INTERVAL (15 s)
    Row("mp_failover_s", "SIGKILL of one -> its jobs taken over", "s", 2, 25),
    # Issue 20: a four-image request is acknowledged as fast as a one-image one, and its last image is
    # shown as soon after its task as a single image is (the two kinds interleaved in one run).
    Row("count4_vs_count1_ack_p99", "ack p99, count:4 / count:1, same run", "x", 2, 1.1),
    Row("count4_last_vs_count1_visible_p95", "last of 4 shown / 1 shown, p95 after task", "x", 2, 1.1),
    Row("cap_cpu_per_poll_ms", "runner CPU per poll (polling flat out)", "ms", 3),
    Row("cap_polls_per_s_per_core", "polls/s one core sustains (runner)", "/s", 0),
    Row("cap_capacity_jobs", "tasks in flight, overhead within 10 % of 1000's", "", 0),
    # JOB_LEASE_SECONDS (10 s) + POLL_MAX_INTERVAL (15 s), at every load up to the capacity
    Row("cap_takeover_max_s", "SIGKILL -> jobs taken over, loads up to capacity", "s", 2, 25),
    Row("cap_double_claims", "capacity runs: tasks polled by two at once", "", 0, 0),
    Row("cap_images_shown_twice", "capacity runs: images shown twice", "", 0, 0),
    Row("cap_loop_lag_p99_ms", "event-loop lag p99, worst process, up to capacity", "ms", 1, 20),
    Row("video_eta_error_pct", "video ETA vs true median, learned apart", "%", 1, 25),
    Row("video_polls_per_job", "polls per video job, 5-90 s", "", 2, 8),
    Row("video_fetch_ms", "fetching a 720P clip (safe fetch + MP4 check)", "ms", 1),
    Row("video_reencode_s", "re-encoding that clip to half its size", "s", 2),
)
REQUIRED_KEYS = tuple(row.key for row in ROWS)

# Context printed under the table: (key, label, unit, digits).
DETAILS: tuple[tuple[str, str, str, int], ...] = (
    ("ack_p50_ms", "ack p50", "ms", 1),
    ("ack_samples", "ack samples", "", 0),
    ("overhead_p50_s", "overhead p50, adaptive", "s", 2),
    ("fixed5_overhead_p50_s", "overhead p50, fixed 5 s", "s", 2),
    ("overhead_delivery_p95_ms", "of which real work after the poll, p95", "ms", 1),
    ("overhead_runner_view_p95_s", "overhead p95 from the runner's clock", "s", 2),
    ("overhead_jobs", "measured jobs per runner", "", 0),
    ("warmup_jobs", "warm-up jobs (empty history at start)", "", 0),
    ("warmup_overhead_p95_s", "warm-up overhead p95, adaptive", "s", 2),
    ("warmup_polls_per_job", "warm-up polls per job, adaptive", "", 2),
    ("overhead_time_factor", "time factor", "x", 0),
    ("overhead_loop_lag_p99_ms", "loop lag p99 during the overhead run", "ms", 1),
    ("loop_jobs_in_flight", "jobs in flight (load scenario)", "", 0),
    ("loop_intake_s", "intake of those jobs", "s", 2),
    ("loop_intake_lag_p99_ms", "loop lag p99 during intake", "ms", 1),
    ("loop_lag_max_ms", "loop lag max", "ms", 1),
    ("loop_polls_per_s", "polls per second", "/s", 0),
    ("loop_deliveries_per_s", "deliveries per second", "/s", 1),
    ("quota_check_p50_ms", "quota check p50", "ms", 2),
    ("quota_rows", "usage rows", "", 0),
    ("quota_samples", "quota checks timed", "", 0),
    ("quota_build_s", "building the usage table", "s", 1),
    ("quota_check_pg_p50_ms", "quota check p50, PostgreSQL", "ms", 2),
    ("quota_check_pg_async_p99_ms", "the same p99, synchronous_commit off", "ms", 2),
    ("quota_pg_rows", "usage rows, PostgreSQL", "", 0),
    ("quota_pg_build_s", "loading them with COPY", "s", 1),
    ("huge_png_side", "huge PNG: pixels a side", "", 0),
    ("huge_png_mb", "huge PNG: file size", "MB", 1),
    ("huge_answer_mb", "huge answer: size sent", "MB", 0),
    ("history_page_p50_ms", "/history page p50", "ms", 2),
    ("gallery_server_page_p95_ms", "a server's gallery page p95, 1M images", "ms", 2),
    ("gallery_server_page_pg_p95_ms", "the same on PostgreSQL", "ms", 2),
    ("history_rows", "posted images of the member", "", 0),
    ("history_samples", "/history pages timed", "", 0),
    ("history_build_s", "building the jobs table", "s", 1),
    ("rules_check_p50_ms_1000", "prompt-rule check p50, 1000 rules", "ms", 2),
    ("rules_match_p99_ms_500", "of which matching alone p99, 500 rules", "ms", 2),
    ("rules_match_p99_ms_1000", "of which matching alone p99, 1000 rules", "ms", 2),
    ("rules_match_cpu_p99_ms_500", "matching CPU time p99, 500 rules", "ms", 2),
    ("rules_match_cpu_p99_ms_1000", "matching CPU time p99, 1000 rules", "ms", 2),
    ("rules_match_cold_max_ms_1000", "5000 never-seen characters, max", "ms", 2),
    ("rules_check_max_ms_1000", "prompt-rule check max, 1000 rules", "ms", 2),
    ("rules_ack_others_p99_ms", "others' ack p99, 8 hostile prompts", "ms", 1),
    ("rules_ack_hostile_max_ms", "hostile prompts' own ack max", "ms", 1),
    ("rules_ack_samples", "others' acks measured", "", 0),
    ("rules_ack_not_answered", "interactions never answered", "", 0),
    ("outage_recovery_p95_s", "after an outage: finished -> delivered, p95", "s", 2),
    ("outage_jobs_in_flight", "jobs in flight when the outage began", "", 0),
    ("outage_seconds", "outage length", "s", 0),
    ("outage_backlog_jobs", "tasks finished during it or 15 s after", "", 0),
    ("outage_failed_jobs", "jobs failed by the outage", "", 0),
    ("outage_drain_s", "delivering the tasks finished during it", "s", 2),
    ("delivery_fast_host_alone_s", "fast host's job alone, enqueue -> delivered", "s", 2),
    ("delivery_fast_host_beside_slow_s", "the same beside 8 trickling jobs", "s", 2),
    ("delivery_slow_downloads_running", "trickling downloads running meanwhile", "", 0),
    ("mix_standard_vs_oracle", "p95 / best possible, 5-90 s (simulated)", "x", 2),
    ("mix_short_vs_oracle", "p95 / best possible, 2-12 s", "x", 2),
    ("mix_long_vs_oracle", "p95 / best possible, 30-180 s", "x", 2),
    ("mix_switch_vs_oracle", "p95 / best possible, after a switch to 30-180 s", "x", 2),
    ("mix_switch_window1_vs_oracle", "the same, jobs 0-100 after the switch", "x", 2),
    ("mp_jobs_in_flight", "multi-process: jobs in flight", "", 0),
    ("mp_lease_s", "multi-process: JOB_LEASE_SECONDS", "s", 0),
    ("mp_failover_goal_s", "multi-process: failover goal (lease + poll max)", "s", 0),
    ("mp_held_at_kill", "jobs the killed process held", "", 0),
    ("mp_held_taken_s", "those taken over after", "s", 2),
    ("mp_pg_commits_per_s", "PostgreSQL commits/s, 3 processes", "/s", 0),
    ("mp_double_submits", "prompts submitted twice", "", 0),
    ("mp_double_deliveries", "outcomes handed over twice", "", 0),
    ("mp_outcomes", "outcomes handed over in all", "", 0),
    ("cap_pg_cpu_per_poll_ms", "PostgreSQL CPU per poll (polling flat out)", "ms", 3),
    ("cap_sandbox_cpu_per_poll_ms", "sandbox CPU per poll", "ms", 3),
    ("cap_cost_polls_per_s", "polls/s of one process polling flat out", "/s", 0),
    ("cap_cost_runner_cores", "cores that process used", "", 2),
    ("count4_ack_p99_ms", "ack p99, count:4", "ms", 1),
    ("count1_ack_p99_ms", "ack p99, count:1", "ms", 1),
    ("count4_last_visible_p95_ms", "last image of a count:4 request shown, p95", "ms", 1),
    ("count1_visible_p95_ms", "a count:1 image shown, p95", "ms", 1),
    ("cap_rtt_polls_per_s_16", "polls/s, one process, 100 ms round trip, concurrency 16", "/s", 0),
    ("cap_rtt_polls_per_s_64", "polls/s, one process, 100 ms round trip, concurrency 64", "/s", 0),
    ("cap_takeover_goal_s", "take-over goal (lease + poll max)", "s", 0),
    ("cap_polls_needed_per_s_10000", "model: polls/s needed for 10,000 in flight", "/s", 0),
    ("cap_runner_cores_needed_10000", "model: runner cores needed for them", "", 2),
    ("cap_pg_cores_needed_10000", "model: PostgreSQL cores needed for them", "", 2),
    ("video_eta_s", "video ETA learned (median of the latest)", "s", 1),
    ("video_true_median_s", "true median of the video durations", "s", 1),
    ("video_image_eta_error_pct", "image ETA vs its true median, videos beside", "%", 1),
    ("video_jobs", "video jobs (as many image jobs beside)", "", 0),
    ("video_clip_seconds", "the fetched clip's length", "s", 1),
    ("video_clip_mb", "the fetched clip's size", "MB", 2),
    ("video_reencoded_mb", "its size re-encoded", "MB", 2),
)


def _fmt(value: float | None, unit: str, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f} {unit}".rstrip()


def verdict(row: Row, value: float | None, pending: bool) -> str:
    if pending:
        return "pending"
    if value is None:
        return "not measured"
    if row.target is None:
        return "yardstick"
    return "ok" if value <= row.target else "MISSED"


def table(figures: Figures, pending: set[str]) -> str:
    lines = [f"{'figure':<40} {'value':>12} {'target':>9}  verdict", "-" * 72]
    for row in ROWS:
        value = figures.get(row.key)
        target = "" if row.target is None else f"<= {row.target:g}"
        lines.append(
            f"{row.label:<40} {_fmt(value, row.unit, row.digits):>12} {target:>9}  "
            f"{verdict(row, value, row.key in pending)}"
        )
    details = [(label, _fmt(figures.get(k), unit, d)) for k, label, unit, d in DETAILS if k in figures]
    if details:
        lines += ["", "details:"]
        lines += [f"  {label:<44} {text:>12}" for label, text in details]
    return "\n".join(lines)


def write_results(path: Path, figures: Figures, meta: Mapping[str, object]) -> None:
    data: dict[str, object] = {key: figures.get(key) for key in REQUIRED_KEYS}
    data |= {k: v for k, v in figures.items() if k not in data}
    data["meta"] = dict(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
