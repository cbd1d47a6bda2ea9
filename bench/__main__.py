"""`python -m bench [--quick | --smoke] [--out PATH]`: run every scenario, print a table, write JSON.

Scenarios run one after another, never together, so none steals CPU from another's measurement. A
scenario that fails is reported and its figures are null; the exit code is then 1. A missed target
is a finding, not a failure: the exit code stays 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bench.profiles import FULL, QUICK, SMOKE, Profile
from bench.report import REQUIRED_KEYS, table, write_results

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"

Scenario = Callable[[Profile], Awaitable[dict[str, float | None]]]


async def _ack(profile: Profile) -> dict[str, float | None]:
    from bench.ack import run_ack

    return (await run_ack(profile)).figures()


async def _overhead(profile: Profile) -> dict[str, float | None]:
    from bench.overhead import run_overhead

    return (await run_overhead(profile)).figures()


async def _loop(profile: Profile) -> dict[str, float | None]:
    from bench.loop_lag import run_loop_lag

    return (await run_loop_lag(profile)).figures()


async def _quotas(profile: Profile) -> dict[str, float | None]:
    from bench.quota import run_quota

    result = await run_quota(
        rows=profile.quota_rows, users=profile.quota_users, samples=profile.quota_samples, seed=profile.seed
    )
    return result.figures()


async def _quotas_pg(profile: Profile) -> dict[str, float | None]:
    from bench.quota_pg import run_quota_pg

    result = await run_quota_pg(
        rows=profile.quota_rows, users=profile.quota_users, samples=profile.quota_samples, seed=profile.seed
    )
    return result.figures()


async def _memory(profile: Profile) -> dict[str, float | None]:
    from bench.memory import run_memory

    return (await run_memory(profile)).figures()


async def _history(profile: Profile) -> dict[str, float | None]:
    from bench.history import run_history

    result = await run_history(rows=profile.history_rows, samples=profile.history_samples, seed=profile.seed)
    return result.figures()


async def _gallery(profile: Profile) -> dict[str, float | None]:
    from bench.gallery import run_gallery

    result = await run_gallery(rows=profile.gallery_rows, samples=profile.gallery_samples, seed=profile.seed)
    return result.figures()


async def _gallery_browser(profile: Profile) -> dict[str, float | None]:
    from bench.gallery import run_gallery_browser

    # The page's own cost does not grow with the database (keyset pages): a hundredth of the query
    # benchmark's images is plenty, and keeps the load short.
    rows = max(3_000, profile.gallery_rows // 100)
    runs = max(1, profile.gallery_samples // 20)  # 20 page loads in the full run, 1 in the smoke run
    result = await run_gallery_browser(rows=rows, runs=runs, seed=profile.seed)
    return result.figures()


async def _rules(profile: Profile) -> dict[str, float | None]:
    from bench.rules import run_rules

    return (await run_rules(profile)).figures()


async def _rules_ack(profile: Profile) -> dict[str, float | None]:
    from bench.rules import run_rules_ack

    return (await run_rules_ack(profile)).figures()


async def _outage(profile: Profile) -> dict[str, float | None]:
    from bench.outage_recovery import run_outage

    return (await run_outage(profile)).figures()


async def _multiproc(profile: Profile) -> dict[str, float | None]:
    from bench.multiproc import run_multiproc

    return (await run_multiproc(profile)).figures()


async def _capacity(profile: Profile) -> dict[str, float | None]:
    from bench.capacity import run_capacity

    return (await run_capacity(profile)).figures()


async def _fairness(profile: Profile) -> dict[str, float | None]:
    from bench.delivery_fairness import run_delivery_fairness

    return (await run_delivery_fairness(profile)).figures()


async def _video(profile: Profile) -> dict[str, float | None]:
    from bench.videos import run_video

    return (await run_video(profile)).figures()


async def _mixes(profile: Profile) -> dict[str, float | None]:
    from bench.mix import adaptive_schedule_args
    from bench.mixes import evaluate_all, figures, table
    from bot.core.schedule import PollSchedule

    # Pure computation (seconds of CPU): off the event loop, which has nothing else to do meanwhile.
    schedule = PollSchedule(*adaptive_schedule_args())
    seeds = [profile.seed + n for n in range(profile.mix_runs)]
    rows = await asyncio.to_thread(evaluate_all, schedule, profile.mix_jobs, seeds)
    print(table(rows), flush=True)
    return figures(rows)


async def _counts(profile: Profile) -> dict[str, float | None]:
    from bench.request_count import run_request_counts

    result = await run_request_counts(profile)
    print(result.table(), flush=True)
    return result.figures()


SCENARIOS: dict[str, Scenario] = {
    "ack": _ack,
    "overhead": _overhead,
    "loop": _loop,
    "quotas": _quotas,
    "quotas_pg": _quotas_pg,
    "memory": _memory,
    "history": _history,
    "gallery": _gallery,
    "gallery_browser": _gallery_browser,
    "rules": _rules,
    "rules_ack": _rules_ack,
    "outage": _outage,
    "fairness": _fairness,
    "mixes": _mixes,
    "multiproc": _multiproc,
    "counts": _counts,
    "capacity": _capacity,
    "video": _video,
}


# The required figures each scenario produces, so a failed scenario's nulls are not "pending".
SCENARIO_KEYS: dict[str, tuple[str, ...]] = {
    "ack": ("ack_p99_ms",),
    "overhead": ("overhead_p95_s", "polls_per_job", "fixed5_overhead_p95_s", "fixed5_polls_per_job"),
    "loop": ("loop_lag_p99_ms_1000", "rss_mb_1000"),
    "quotas": ("quota_check_p99_ms_1m",),
    "quotas_pg": ("quota_check_pg_p99_ms_1m",),
    "memory": ("rss_mb_huge_png", "rss_mb_huge_answer", "rss_mb_limit_png"),
    "history": ("history_page_p99_ms_300k",),
    "gallery": (
        "gallery_page_p95_ms",
        "gallery_search_p95_ms",
        "gallery_page_pg_p95_ms",
        "gallery_search_pg_p95_ms",
    ),
    "gallery_browser": ("gallery_lcp_p95_ms", "gallery_page_kb"),
    "rules": ("rules_check_p99_ms_500", "rules_check_p99_ms_1000"),
    "rules_ack": ("rules_ack_others_max_ms",),
    "outage": ("outage_requests_per_s", "outage_recovery_max_s"),
    "fairness": ("delivery_fast_host_delay_s",),
    "mixes": ("mix_worst_vs_oracle", "mix_switch_window2_vs_oracle"),
    "multiproc": ("mp_polls_per_s", "mp_double_claims", "mp_failover_s"),
    "counts": ("count4_vs_count1_ack_p99", "count4_last_vs_count1_visible_p95"),
    "capacity": (
        "cap_cpu_per_poll_ms",
        "cap_polls_per_s_per_core",
        "cap_capacity_jobs",
        "cap_takeover_max_s",
        "cap_double_claims",
        "cap_images_shown_twice",
        "cap_loop_lag_p99_ms",
    ),
    "video": ("video_eta_error_pct", "video_polls_per_job", "video_fetch_ms", "video_reencode_s"),
}


def _failed_keys(errors: dict[str, str]) -> set[str]:
    return {key for name in errors for key in SCENARIO_KEYS[name]}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer jobs, within a minute on two cores")
    parser.add_argument("--smoke", action="store_true", help="a few seconds: proves every scenario runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results file (JSON)")
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), help="run only this scenario (repeatable)"
    )
    return parser.parse_args(argv)


async def run(profile: Profile, only: Sequence[str] | None) -> tuple[dict[str, float | None], dict[str, str]]:
    figures: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for name, scenario in SCENARIOS.items():
        if only and name not in only:
            continue
        started = time.monotonic()
        print(f"[bench] {name} ...", flush=True)
        try:
            figures |= await scenario(profile)
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        print(f"[bench] {name} done in {time.monotonic() - started:.1f} s", flush=True)
    return figures, errors


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    profile = SMOKE if args.smoke else QUICK if args.quick else FULL
    # The runner logs every job at INFO; a benchmark wants only what went wrong.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # discord.py warns that voice libraries are missing; the bot has no voice features.
    logging.getLogger("discord.client").setLevel(logging.ERROR)
    started = time.monotonic()
    figures, errors = asyncio.run(run(profile, args.only))
    elapsed = time.monotonic() - started
    # A required figure that no scenario produced and no scenario failed on is work still to do.
    missing = {key for key in REQUIRED_KEYS if figures.get(key) is None}
    pending = set() if args.only else missing - _failed_keys(errors)
    print()
    print(f"imagine-bot benchmarks: {profile.name} run, {elapsed:.1f} s")
    print(table(figures, pending))
    if pending:
        print(f"\npending: {', '.join(sorted(pending))}")
    for name, error in errors.items():
        print(f"\nscenario {name} FAILED: {error}")
    meta = {
        "mode": profile.name,
        "elapsed_s": round(elapsed, 2),
        "errors": errors,
        "pending": sorted(pending),
    }
    write_results(args.out, figures, meta)
    print(f"\nwrote {args.out}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
