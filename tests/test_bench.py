"""`python -m bench` still runs end to end: every scenario, every key in the results file.

Smoke mode shrinks each scenario to a few seconds; the figures are not checked against their targets
here (a loaded CI machine would make that flaky), only that each one was measured."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import REQUIRED_KEYS
from bot.core.schedule import PollSchedule

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(180)  # the whole benchmark, shortened: ~60 s on a loaded machine
def test_bench_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,  # a loaded CI machine: PostgreSQL starts and the runner processes take most of it
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    meta = results["meta"]
    assert meta["mode"] == "smoke" and meta["errors"] == {}
    assert meta["pending"] == []
    for key in REQUIRED_KEYS:
        assert isinstance(results.get(key), int | float) and results[key] >= 0, (key, results.get(key))
    assert "polls per job" in done.stdout  # the table was printed


# The poll schedule, in the event simulation the benchmark's analysis uses (no I/O, about a second).


def test_a_schedule_with_equal_bounds_is_a_fixed_poller() -> None:
    from bench.simulate import log_uniform

    rng = random.Random(3)
    history = [log_uniform()(rng) for _ in range(50)]
    fixed = PollSchedule(min_interval=5, max_interval=5, first_poll=5)
    assert {fixed.next_delay(age, h) for age in (0, 4.9, 5, 37, 200) for h in ([], history)} == {5}


def test_the_adaptive_schedule_keeps_its_budget_and_beats_a_fixed_poller() -> None:
    from bench.simulate import log_uniform, simulate

    adaptive = simulate(PollSchedule(), log_uniform(), jobs=2000)
    fixed = simulate(PollSchedule(5, 5, 5), log_uniform(), jobs=2000)
    assert adaptive.polls_per_job <= PollSchedule().poll_budget * 1.05
    assert adaptive.overhead_p95 < fixed.overhead_p95 - 0.5


def test_the_first_poll_follows_a_service_that_gets_faster() -> None:
    # Recorded durations are detection times: a schedule that trusted them as they are would only
    # ever move its first poll later, and jobs of 2-30 s would keep waiting for a poll tuned to 5-90 s.
    from bench.simulate import log_uniform, simulate

    after = simulate(
        PollSchedule(), log_uniform(), jobs=2500, change_at=600, later_durations=log_uniform(2, 30)
    )
    assert after.overhead_p95 < 2.0


def test_a_poll_a_moment_before_the_planned_first_one_does_not_add_a_poll() -> None:
    history = [6.0 + 3.0 * i for i in range(20)]
    schedule = PollSchedule()
    plan = schedule.plan(history)
    assert schedule.next_delay(plan.first_poll - 0.01, history) >= plan.gap
