"""Admission by units (issue 20): a request of several tasks is reserved whole in one transaction, on
both backends (a real SQLite file and a real PostgreSQL), quotas, credits, the server's cap, the cooldown
and the running cap count units, each task is refunded on its own, and a refusal says how many tasks
would have fitted. The cross-process race is in tests/test_quota_processes.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.adapters.store import Store
from bot.core.models import ImageRequest, Job, JobStatus, Origin
from bot.core.policy.quotas import (
    CONCURRENCY,
    COOLDOWN,
    GUILD_CAP,
    QUOTA,
    Decision,
    GuildPolicy,
    Member,
    PersonalSnapshot,
    Snapshot,
    UserOverride,
    decide,
    decide_personal,
)
from bot.core.texts import render
from bot.core.usage_records import EXPORT_COLUMNS
from sandbox.server import Sandbox
from tests.helpers import RecordingSink, running_runner

GUILD, USER, MOD = 100, 1, 999
ALICE = Member(GUILD, USER)
NOW = 1_800_000_000.0
ORIGIN = Origin(source="discord", guild_id=GUILD, channel_id=5, user_id=USER)


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


async def policy(store: Store, **changes: object) -> None:
    await store.settings.update_policy(GUILD, MOD, NOW - 10, **{"max_running": 100, **changes})


async def ask(
    store: Store, count: int, units: int = 1, now: float = NOW, member: Member = ALICE, default: int = 10
) -> tuple[Decision, list[Job]]:
    return await store.usage.admit(
        member, ImageRequest("a cat"), ORIGIN, now, default, count=count, units_per_task=units
    )


async def rows(store: Store) -> list[dict[str, object]]:
    return [
        dict(zip(EXPORT_COLUMNS, row, strict=True))
        for row in await store.usage.export(GUILD, 0, NOW + 1e6, 100)
    ]


async def used(store: Store, now: float = NOW) -> int:
    return (await store.usage.summary(ALICE, now, 10)).used_today


# -- the store: one admission reserves every task -----------------------------------------------------


async def test_four_tasks_are_reserved_in_one_admission_as_one_request(store: Store) -> None:
    await policy(store)
    decision, jobs = await ask(store, 4)
    assert decision.allowed and decision.fits == 4
    assert [job.request_index for job in jobs] == [1, 2, 3, 4]
    first = jobs[0].id
    assert {job.request_id for job in jobs} == {first} and {job.request_size for job in jobs} == {4}
    assert all(job.status is JobStatus.QUEUED and job.units == 1 for job in jobs)
    log = await rows(store)
    assert [(r["job_id"], r["request_id"], r["counted"], r["outcome"]) for r in log] == [
        (job.id, first, 1, "submitted") for job in jobs
    ]
    assert await used(store) == 4
    assert (await store.usage.summary(ALICE, NOW, 10)).running == 4
    stored = [await store.jobs.get(job.id) for job in jobs]
    assert [(j.request_id, j.request_index, j.request_size) for j in stored if j] == [
        (first, n, 4) for n in (1, 2, 3, 4)
    ]


async def test_a_request_that_does_not_fit_reserves_nothing_and_says_what_fits(store: Store) -> None:
    await policy(store, default_quota=5)
    assert (await ask(store, 2))[0].allowed
    decision, jobs = await ask(store, 4)
    assert not decision.allowed and jobs == []
    assert decision.reason == QUOTA and decision.fits == 3
    assert "3 images left today" in render("en", decision.message)
    log = await rows(store)
    assert [r["outcome"] for r in log] == ["submitted", "submitted", "refused"]
    assert log[-1]["counted"] == 0 and await used(store) == 2
    decision, jobs = await ask(store, 3)  # the offered count
    assert decision.allowed and len(jobs) == 3
    decision, _ = await ask(store, 1)
    assert decision.reason == QUOTA and decision.fits == 0
    assert "used all 5" in render("en", decision.message)


async def test_video_units_count_and_a_video_fits_only_whole(store: Store) -> None:
    await policy(store, default_quota=7)
    decision, jobs = await ask(store, 2, units=3)
    assert decision.allowed and [job.units for job in jobs] == [3, 3]
    assert await used(store) == 6
    assert [r["counted"] for r in await rows(store)] == [3, 3]
    decision, jobs = await ask(store, 1, units=3)  # 1 unit left: a video of 3 does not fit
    assert decision.reason == QUOTA and decision.fits == 0 and jobs == []
    assert (await ask(store, 1))[0].allowed  # an image of 1 does
    assert await used(store) == 7


async def test_each_task_is_refunded_on_its_own(store: Store) -> None:
    await policy(store)
    _, jobs = await ask(store, 3, units=2)
    assert await used(store) == 6
    assert await store.jobs.mark_ended(jobs[1].id, JobStatus.FAILED, "no", NOW + 1)
    assert await used(store) == 4
    assert await store.jobs.cancel(jobs[2].id, USER, "stop", NOW + 2, refund=True)
    assert await used(store) == 2
    assert await store.jobs.mark_running(jobs[0].id, "t1", NOW + 1, NOW + 2)
    assert await store.jobs.mark_completed(jobs[0].id, ["https://x/1.png"], NOW + 3, None)
    log = await rows(store)
    assert [(r["job_id"], r["outcome"], r["counted"]) for r in log] == [
        (jobs[0].id, "completed", 2),
        (jobs[1].id, "failed", 0),
        (jobs[2].id, "cancelled", 0),
    ]
    assert (await store.usage.summary(ALICE, NOW + 4, 10)).running == 0


async def test_a_cancel_that_counts_keeps_exactly_that_tasks_units(store: Store) -> None:
    await policy(store)
    _, jobs = await ask(store, 2, units=3)
    assert await store.jobs.cancel(jobs[0].id, USER, "stop", NOW + 1, refund=False)
    assert await store.jobs.cancel(jobs[1].id, USER, "stop", NOW + 1, refund=True)
    assert [r["counted"] for r in await rows(store)] == [3, 0] and await used(store) == 3


async def test_credits_pay_for_the_last_units_and_come_back_per_task(store: Store) -> None:
    await policy(store, default_quota=2)
    await store.settings.grant_credits(GUILD, USER, 3, MOD, NOW - 5)
    decision, jobs = await ask(store, 4)
    assert decision.allowed and decision.credit_units == 2
    assert [r["used_credit"] for r in await rows(store)] == [0, 0, 1, 1]
    assert (await store.usage.summary(ALICE, NOW, 10)).credits == 1
    await store.jobs.mark_ended(jobs[3].id, JobStatus.FAILED, "no", NOW + 1)  # a credit task: back
    await store.jobs.mark_ended(jobs[0].id, JobStatus.FAILED, "no", NOW + 1)  # a quota task
    assert (await store.usage.summary(ALICE, NOW + 2, 10)).credits == 2
    # The quota paid for tasks 1-2 and credits for 3-4; 1 and 4 came back: 1 quota unit, 2 credits.
    assert await used(store, NOW + 2) == 1
    decision, _ = await ask(store, 4, now=NOW + 3)
    assert decision.reason == QUOTA and decision.fits == 3


async def test_the_running_cap_counts_units(store: Store) -> None:
    await policy(store, max_running=2)
    decision, jobs = await ask(store, 4)
    assert decision.reason == CONCURRENCY and decision.fits == 2 and jobs == []
    # A video larger than the whole cap still runs, alone.
    decision, jobs = await ask(store, 2, units=3)
    assert decision.reason == CONCURRENCY and decision.fits == 1
    decision, jobs = await ask(store, 1, units=3)
    assert decision.allowed and len(jobs) == 1
    decision, _ = await ask(store, 1)
    assert decision.reason == CONCURRENCY and decision.fits == 0


async def test_the_servers_daily_cap_counts_units(store: Store) -> None:
    await policy(store, daily_cap=5)
    other = Member(GUILD, USER + 1)
    assert (await ask(store, 3, member=other))[0].allowed
    decision, _ = await ask(store, 4)
    assert decision.reason == GUILD_CAP and decision.fits == 2
    assert "2 of today's 5 images left" in render("en", decision.message)


async def test_the_cooldown_grows_with_the_units_of_the_last_request(store: Store) -> None:
    await policy(store, cooldown_seconds=10)
    assert (await ask(store, 3))[0].allowed
    decision, _ = await ask(store, 1, now=NOW + 29)
    assert decision.reason == COOLDOWN and decision.retry_at == NOW + 30
    assert (await ask(store, 1, now=NOW + 30))[0].allowed


async def test_personal_use_counts_units_too(store: Store) -> None:
    origin = Origin(source="discord", user_id=USER, channel_id=5, context="dm")
    decision, jobs = await store.personal.admit(USER, ImageRequest("a"), origin, NOW, 5, 100, count=3)
    assert decision.allowed and len({job.request_id for job in jobs}) == 1 and len(jobs) == 3
    assert all(job.guild_id is None for job in jobs)
    decision, jobs = await store.personal.admit(USER, ImageRequest("b"), origin, NOW, 5, 100, count=3)
    assert decision.reason == QUOTA and decision.fits == 2 and jobs == []
    assert "2 personal images left" in render("en", decision.message)
    decision, _ = await store.personal.admit(USER, ImageRequest("c"), origin, NOW, 5, 4, count=2)
    assert decision.reason == CONCURRENCY and decision.fits == 1
    assert (await store.personal.summary(USER, NOW, 5, 100)).used_today == 3


async def test_a_count_outside_one_to_four_is_a_programming_error(store: Store) -> None:
    with pytest.raises(ValueError):
        await ask(store, 5)
    with pytest.raises(ValueError):
        await ask(store, 0)


# -- the policy alone: the "fits" figure --------------------------------------------------------------


def snapshot(**changes: object) -> Snapshot:
    values: dict[str, object] = {
        "member": ALICE,
        "policy": GuildPolicy(GUILD, default_quota=10, max_running=100),
        "global_default": 10,
        "now": NOW,
    }
    return Snapshot(**{**values, **changes})


@pytest.mark.parametrize(
    ("used_today", "count", "units", "fits"),
    [
        (6, 4, 1, 4),  # exactly fits
        (8, 4, 1, 2),  # k left: offers k
        (10, 4, 1, 0),
        (5, 2, 3, 1),  # 5 left: one video of 3, not a part of the second
        (8, 1, 3, 0),  # 2 left: a video of 3 never fits in part
    ],
)
def test_fits_is_whole_tasks(used_today: int, count: int, units: int, fits: int) -> None:
    decision = decide(snapshot(used_today=used_today), None, count, units)
    assert decision.fits == fits
    assert decision.allowed == (fits == count)


def test_the_smallest_limit_binds_and_other_refusals_offer_nothing() -> None:
    tight = snapshot(
        used_today=7, running=1, policy=GuildPolicy(GUILD, default_quota=10, max_running=3, daily_cap=100)
    )
    decision = decide(tight, None, 4)
    assert (decision.reason, decision.fits) == (CONCURRENCY, 2)
    banned_like = snapshot(override=UserOverride(daily_limit=0))
    assert decide(banned_like, None, 4).fits == 0
    unlimited = snapshot(used_today=500, override=UserOverride(unlimited=True))
    assert decide(unlimited, None, 4).fits == 4
    personal = PersonalSnapshot(USER, limit=5, used_today=4, max_running=10, now=NOW)
    assert decide_personal(personal, None, 3).fits == 1


async def test_the_runner_launches_and_abandons_every_task(sandbox: Sandbox, tmp_path: Path) -> None:
    db_path = tmp_path / "bot.db"
    sink = RecordingSink()
    origin = dataclasses.replace(ORIGIN, source="test")  # a runner follows its own source's jobs
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        await runner.parts.store.settings.update_policy(GUILD, MOD, NOW, max_running=100)
        decision, jobs = await runner.admit(ImageRequest("four"), origin, ALICE, 10, count=4)
        assert decision.allowed and len(jobs) == 4
        await runner.launch(jobs, 777)
        outcomes = await sink.wait_for(4)
        assert sorted(o.job.request_index for o in outcomes) == [1, 2, 3, 4]
        assert {o.job.message_id for o in outcomes} == {777}
        assert len(sandbox.tasks) == 4
        decision, dropped = await runner.admit(ImageRequest("two"), origin, ALICE, 10, count=2)
        assert decision.allowed
        await runner.abandon(dropped, "could not answer")
        summary = await runner.parts.store.usage.summary(ALICE, runner.parts.clock.time(), 10)
        assert summary.used_today == 4 and summary.running == 0
    assert len(sandbox.tasks) == 4
