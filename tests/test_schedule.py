"""What the poll schedule learns from: finished jobs, and jobs still running (Kaplan-Meier)."""

from __future__ import annotations

from bot.core.schedule import Cohort, PollSchedule, with_running


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


def test_the_tail_beyond_the_oldest_running_job_comes_from_recent_finished_ones() -> None:
    # A cohort younger than the longest jobs: everything past 100 s is still running. Jobs that
    # finished lately (submitted earlier) show that such jobs take up to 180 s.
    finished = [30.0 + i for i in range(0, 70, 2)]
    running = [60.0 + i for i in range(40)]
    recent = [30.0 + 5.0 * i for i in range(31)]  # 30 .. 180 s
    without = with_running(finished, running, 200)
    with_tail = with_running(finished, running, 200, beyond=recent)
    oldest = max(running)
    # Without later durations to go by, what lies beyond the oldest running job is a guess...
    assert oldest < max(without) <= 2 * oldest
    # ...with them, it is spread like the recent durations past that age.
    assert max(with_tail) > 170.0
    assert {d for d in with_tail if d > oldest} <= set(recent)
    assert PollSchedule().plan(with_tail).gap > PollSchedule().plan(finished).gap


def test_the_first_poll_may_wait_past_the_max_interval_when_no_job_is_that_quick() -> None:
    history = [30.0 + 150.0 * i / 199 for i in range(200)]  # every recent job took 30 s or more
    schedule = PollSchedule(min_interval=1.0, max_interval=15.0)
    plan = schedule.plan(history)
    first = schedule.next_delay(0.0, history)
    assert first > 15.0  # no polls at 15 and 30 s that cannot find anything
    assert first <= plan.shortest + 15.0  # the quickest job still waits at most max_interval
    assert schedule.next_delay(first, history) <= 15.0


def test_a_cohort_that_sees_the_service_slow_down_forgets_the_old_durations() -> None:
    cohort = Cohort(200)
    for key in range(200):  # quick jobs: 2-12 s
        cohort.started(key, at=float(key) * 0.5)
        cohort.finished(key, 2.0 + (key % 11))
    switch = 100.0
    for n in range(60):  # then jobs that take longer: none has finished, the oldest are 30 s old
        cohort.started(1000 + n, at=switch + n * 0.5)
    sample = cohort.sample(now=switch + 30.0)
    assert min(sample) >= 12.0  # the quick jobs before the change no longer count
    plan = PollSchedule().plan(sample)
    assert plan.first_poll > 12.0  # no polls at 2-12 s for jobs that all run longer
    steady = Cohort(200, finished=[2.0 + (k % 11) for k in range(200)])
    for n in range(60):  # the same quick service: every running job is younger than 12 s
        steady.started(n, at=switch + 20.0 + n / 6)
    assert min(steady.sample(now=switch + 30.0)) <= 3.0
