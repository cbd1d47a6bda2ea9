"""What the poll schedule learns from: finished jobs, and jobs still running (Kaplan-Meier)."""

from __future__ import annotations

from bot.schedule import Cohort, PollSchedule, with_running


def test_without_running_jobs_the_sample_is_the_history() -> None:
    assert with_running([5.0, 7.0, 9.0], [], 200) == [5.0, 7.0, 9.0]


def test_running_jobs_lengthen_what_a_cold_start_learned() -> None:
    # Five quick jobs finished; twenty more have been running for 40 s and counting.
    sample = with_running([5.0, 6.0, 6.5, 7.0, 8.0], [40.0] * 20, 200)
    assert len(sample) == 25
    assert sum(1 for d in sample if d >= 40.0) == 20
    quick_only = PollSchedule().plan([5.0, 6.0, 6.5, 7.0, 8.0])
    with_them = PollSchedule().plan(sample)
    assert with_them.gap > quick_only.gap  # fewer, wider polls for the long ones


def test_cohort_forgets_failures_and_keeps_its_size() -> None:
    cohort = Cohort(3, finished=[10.0])
    cohort.started(1, at=100.0)
    cohort.started(2, at=100.0)
    cohort.dropped(2)  # failed: says nothing about durations
    cohort.finished(1, 12.0)
    assert sorted(cohort.sample(now=200.0)) == [10.0, 12.0]
    cohort.started(3, at=190.0)
    cohort.started(4, at=195.0)  # the oldest entry (the seeded 10 s) leaves the cohort
    sample = cohort.sample(now=200.0)
    assert len(sample) == 3 and 10.0 not in sample
    assert max(sample) == 12.0  # the two young running jobs do not outlast the one that finished
