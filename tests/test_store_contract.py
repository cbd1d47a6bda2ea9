"""The store contract: every test taking `any_store` runs unchanged on SQLite and on a real PostgreSQL
(one throwaway server per test session, a schema of its own per test). The tests after those hold
what only a database shared by several processes promises: leases, and quotas exact across pools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from bot.adapters.store import SCHEMA_HEAD, Store
from bot.core.models import ImageRequest, JobStatus, Origin
from bot.core.policy.prompt_rules import RuleError
from bot.core.policy.quotas import QUOTA, Member
from bot.core.redaction import redact
from tests.helpers import posted_ids

GUILD, MOD = 100, 999
NOW = 1_800_000_000.0
ALICE = Member(GUILD, 1)
ORIGIN = Origin(source="discord", guild_id=GUILD, channel_id=5, user_id=1, interaction_token="tok")
BIG_ID = 1_234_567_890_123_456_789  # Discord ids need 64 bits


async def admitted(store: Store, member: Member = ALICE, now: float = NOW, prompt: str = "a cat") -> int:
    origin = Origin(source="discord", guild_id=member.guild_id, channel_id=5, user_id=member.user_id)
    decision, jobs = await store.usage.admit(member, ImageRequest(prompt), origin, now, 50)
    job = jobs[0] if jobs else None
    assert decision.allowed and job is not None, decision
    return job.id


async def test_a_job_goes_from_queued_to_delivered(any_store: Store) -> None:
    store = any_store
    job = await store.jobs.create(ImageRequest("a fox", "16:9", ("https://x/ref.png",)), ORIGIN, NOW)
    assert (job.status, job.reference_urls, job.interaction_token) == (
        JobStatus.QUEUED,
        ["https://x/ref.png"],
        "tok",
    )
    await store.jobs.set_message_id(job.id, BIG_ID)
    assert await store.jobs.mark_submitting(job.id)
    assert await store.jobs.mark_requeued(job.id)
    assert await store.jobs.mark_submitting(job.id)
    assert await store.jobs.mark_running(job.id, "task-1", NOW + 1, NOW + 2)
    assert await store.jobs.running_count("discord") == 1
    assert await store.jobs.next_poll_time("discord") == NOW + 2
    assert await store.jobs.claim_due("discord", NOW + 1, 10, 30.0) == []
    claimed = await store.jobs.claim_due("discord", NOW + 2, 10, 30.0)
    assert [j.id for j in claimed] == [job.id]
    assert await store.jobs.claim_due("discord", NOW + 3, 10, 30.0) == []  # leased
    assert await store.jobs.record_poll(
        job.id, api_status="running", trace_id="tr", next_poll_at=NOW + 5, poll_errors=0
    )
    assert await store.ops.unfinished_by_status("discord") == {"running": 1}
    assert await store.jobs.mark_completed(job.id, ["https://x/1.png"], NOW + 11, None)
    assert not await store.jobs.mark_ended(
        job.id, JobStatus.FAILED, "late", NOW + 12
    )  # the first ending wins
    await store.jobs.mark_delivered(job.id, delivery="channel", result_message_id=BIG_ID + 1, now=NOW + 12,
                               result_channel_id=5)  # fmt: skip
    done = await store.jobs.get(job.id)
    assert done is not None
    assert (done.status, done.message_id, done.result_message_id, done.interaction_token, done.trace_id) == (
        JobStatus.DELIVERED, BIG_ID, BIG_ID + 1, None, "tr")  # fmt: skip
    assert (done.poll_count, done.result_urls) == (2, ["https://x/1.png"])
    assert await store.jobs.recent_durations(True) == [10.0]
    assert await store.jobs.recent_durations(False) == []
    assert await store.jobs.get(job.id + 100) is None
    assert await store.jobs.to_resume("discord") == []


async def test_history_and_the_unfinished_list(any_store: Store) -> None:
    store = any_store
    ids = []
    for n in range(5):
        job_id = await admitted(store, now=NOW + n)
        await store.jobs.mark_running(job_id, f"t{n}", NOW + n, NOW + n)
        await store.jobs.mark_completed(job_id, ["https://x/1.png"], NOW + n + 1, None)
        await store.jobs.mark_delivered(
            job_id, delivery="channel", result_message_id=1000 + n, now=NOW + n + 2
        )
        ids.append(job_id)
    waiting = await admitted(store, now=NOW + 9)
    page = await store.jobs.delivered_requests(GUILD, 1, 2)
    assert (posted_ids(page), page.total) == (ids[:-3:-1], 5)
    older = await store.jobs.delivered_requests(GUILD, 1, 2, older_than=ids[3])
    assert posted_ids(older) == [ids[2], ids[1]]
    newer = await store.jobs.delivered_requests(GUILD, 1, 2, newer_than=ids[0])
    assert posted_ids(newer) == [ids[2], ids[1]]
    assert [j.id for j in await store.jobs.unfinished(GUILD, 1)] == [waiting]
    assert [j.id for j in await store.jobs.unfinished(GUILD, None)] == [waiting]
    await store.jobs.mark_result_deleted(ids[0], NOW + 20)
    await store.jobs.mark_cancelled_by(waiting, MOD)
    assert (await store.jobs.get(waiting)).cancelled_by == MOD  # type: ignore[union-attr]


async def posted_request(store: Store, size: int, at: float, *, posted: int | None = None) -> list[int]:
    """A request of `size` images for ALICE, its first `posted` (all by default) images posted."""
    decision, jobs = await store.usage.admit(ALICE, ImageRequest("a cat"), ORIGIN, at, 50, count=size)
    assert decision.allowed and len(jobs) == size, decision
    for job in jobs[: size if posted is None else posted]:
        await store.jobs.mark_running(job.id, f"t{job.id}", at, at)
        await store.jobs.mark_completed(job.id, ["https://x/1.png"], at + 1, None)
        await store.jobs.mark_delivered(
            job.id, delivery="channel", result_message_id=5000 + job.id, now=at + 2
        )
    return [job.id for job in jobs]


async def test_history_counts_requests_not_images(any_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page lists requests; the total and so the page count count them too, a request of four images
    being one, whichever of its images were posted."""
    from bot.adapters.store import jobs_repo

    store = any_store
    sizes = [1, 4, 1, 4, 4, 1]
    requests = [await posted_request(store, size, NOW + 10 * n) for n, size in enumerate(sizes)]
    # A request whose first image failed still counts once, by its posted images.
    partial = await posted_request(store, 4, NOW + 100, posted=0)
    for job_id in partial[:2]:
        assert await store.jobs.mark_ended(job_id, JobStatus.FAILED, "no", NOW + 101)
    for job_id in partial[2:]:
        await store.jobs.mark_running(job_id, f"t{job_id}", NOW + 100, NOW + 100)
        await store.jobs.mark_completed(job_id, ["https://x/1.png"], NOW + 101, None)
        await store.jobs.mark_delivered(
            job_id, delivery="channel", result_message_id=9000 + job_id, now=NOW + 102
        )
    await posted_request(store, 4, NOW + 200, posted=0)  # nothing posted: not in the history
    newest, total, capped, more = await store.jobs.delivered_requests(GUILD, 1, 5)
    # Requests, where the posted images are 1 + 4 + 1 + 4 + 4 + 1 + 2 = 17.
    assert (total, capped) == (7, False)
    assert [group[0].request for group in newest] == [partial[0], *[r[0] for r in requests[:1:-1]]]
    assert more
    older, total, capped, more = await store.jobs.delivered_requests(
        GUILD, 1, 5, older_than=newest[-1][0].request
    )
    assert [group[0].request for group in older] == [requests[1][0], requests[0][0]]
    assert [len(group) for group in older] == [4, 1] and (total, capped, more) == (7, False, False)
    # The count reads at most HISTORY_COUNT_CAP posted images: the requests among them, "at least".
    monkeypatch.setattr(jobs_repo, "HISTORY_COUNT_CAP", 6)
    page = await store.jobs.delivered_requests(GUILD, 1, 5)
    assert page.capped and 2 <= page.total <= 6
    monkeypatch.setattr(jobs_repo, "HISTORY_COUNT_CAP", 17)  # exactly as many as were posted
    page = await store.jobs.delivered_requests(GUILD, 1, 5)
    assert page.capped and page.total == 7
    monkeypatch.setattr(jobs_repo, "HISTORY_COUNT_CAP", 18)
    assert not (await store.jobs.delivered_requests(GUILD, 1, 5)).capped


async def test_endings_refund_and_delivery_retries(any_store: Store) -> None:
    store = any_store
    await store.settings.set_user_quota(GUILD, 1, limit=0, unlimited=False, actor_id=MOD, now=NOW)
    assert await store.settings.grant_credits(GUILD, 1, 1, MOD, NOW) == 1
    job_id = await admitted(store)
    assert (await store.usage.summary(ALICE, NOW, 5)).credits == 0
    assert await store.jobs.mark_ended(job_id, JobStatus.FAILED, "it failed", NOW + 1)
    summary = await store.usage.summary(ALICE, NOW + 1, 5)
    assert (summary.credits, summary.used_today, summary.running) == (1, 0, 0)
    assert await store.jobs.mark_undeliverable(job_id, retries=1, now=NOW + 2) == 1
    assert [j.id for j in await store.jobs.to_resume("discord")] == [job_id]
    assert await store.jobs.mark_undeliverable(job_id, retries=1, now=NOW + 3) == 2
    assert await store.jobs.to_resume("discord") == []  # given up
    other = await admitted(store)
    await store.jobs.abandon(other, "could not answer", NOW + 4)
    gone = await store.jobs.get(other)
    assert gone is not None and (gone.status, gone.delivery) == (JobStatus.FAILED, "none")
    assert (await store.usage.summary(ALICE, NOW + 4, 5)).credits == 1


async def test_settings_and_moderation(any_store: Store) -> None:
    store = any_store
    await store.settings.update_policy(
        GUILD, MOD, NOW, default_quota=7, exempt_managers=True, timezone="Europe/Paris"
    )
    policy = await store.settings.guild_policy(GUILD)
    assert (policy.default_quota, policy.exempt_managers, policy.timezone) == (7, True, "Europe/Paris")
    with pytest.raises(ValueError, match="unknown"):
        await store.settings.update_policy(GUILD, MOD, NOW, colour="red")
    await store.settings.set_role_quota(GUILD, BIG_ID, 4, MOD, NOW)
    await store.settings.set_role_quota(GUILD, BIG_ID, 6, MOD, NOW)
    assert await store.settings.role_quotas(GUILD) == {BIG_ID: 6}
    await store.settings.set_role_quota(GUILD, BIG_ID, None, MOD, NOW)
    assert await store.settings.role_quotas(GUILD) == {}
    await store.settings.set_user_quota(GUILD, 2, limit=None, unlimited=True, actor_id=MOD, now=NOW)
    assert await store.settings.grant_credits(GUILD, 3, 4, MOD, NOW) == 4
    assert await store.settings.grant_credits(GUILD, 3, -10, MOD, NOW) == 0
    assert await store.settings.grant_credits(GUILD, 3, 2, MOD, NOW) == 2
    overview = await store.ops.quota_overview(GUILD)
    assert (overview.unlimited, overview.credit_holders, overview.credits) == (1, 1, 2)
    await store.settings.ban(GUILD, 5, reason="spam", expires_at=None, actor_id=MOD, now=NOW)
    await store.settings.ban(GUILD, 5, reason="spam again", expires_at=NOW + 60, actor_id=MOD, now=NOW)
    await store.settings.ban(GUILD, 6, reason=None, expires_at=NOW - 1, actor_id=MOD, now=NOW - 10)
    assert [(b.user_id, b.reason) for b in await store.settings.bans(GUILD, NOW)] == [(5, "spam again")]
    assert await store.settings.unban(GUILD, 5, MOD, NOW)
    assert not await store.settings.unban(GUILD, 5, MOD, NOW)
    signature, rules = await store.settings.rules_if_changed(GUILD, None)
    assert rules == []
    rule = await store.settings.add_rule(GUILD, "word", "badword", MOD, NOW)
    signature2, rules = await store.settings.rules_if_changed(GUILD, signature)
    assert rules == [rule] and signature2 != signature
    assert (await store.settings.rules_if_changed(GUILD, signature2))[1] is None
    assert await store.settings.remove_rule(GUILD, rule.id, MOD, NOW) == rule
    assert await store.settings.remove_rule(GUILD, rule.id, MOD, NOW) is None
    log = await store.settings.admin_log(GUILD, limit=3)
    assert [e.action for e in log] == ["rule_remove", "rule_add", "unban"]
    assert log[0].details == {"pattern": "badword"}
    await store.ops.set_meta("k", "v1")
    await store.ops.set_meta("k", "v2")
    assert (await store.ops.get_meta("k"), await store.ops.get_meta("nothing")) == ("v2", None)
    await store.ops.ping()


async def test_a_server_holds_at_most_max_rules(any_store: Store) -> None:
    from bot.core.policy.prompt_rules import MAX_RULES

    for n in range(MAX_RULES):
        await any_store.settings.add_rule(GUILD, "word", f"w{n}", MOD, NOW)
    with pytest.raises(RuleError):
        await any_store.settings.add_rule(GUILD, "word", "one more", MOD, NOW)


async def test_reports_and_reset(any_store: Store) -> None:
    store = any_store
    for _ in range(3):
        job_id = await admitted(store)
        await store.jobs.mark_running(job_id, "t", NOW, NOW)
        await store.jobs.mark_completed(job_id, ["u"], NOW + 1, None)
    await store.settings.update_policy(GUILD, MOD, NOW, default_quota=3)
    decision, _ = await store.usage.admit(ALICE, ImageRequest("more"), ORIGIN, NOW + 2, 5)
    assert decision.reason == QUOTA
    stats = await store.usage.stats(GUILD, NOW - 1)
    assert (stats.generations, stats.completed, stats.refusals, stats.top_users) == (
        3,
        3,
        {QUOTA: 1},
        [(1, 3)],
    )
    assert (await store.usage.stats(None, NOW - 1)).generations == 3
    assert await store.ops.refusals_between(NOW, NOW + 10) == {QUOTA: 1}
    assert await store.settings.reset_today(GUILD, 1, MOD, NOW + 3) == 3
    assert (await store.usage.summary(ALICE, NOW + 3, 5)).used_today == 0
    assert len(await store.usage.export(GUILD, 0, NOW + 10, 100)) == 4


# -- several processes on one PostgreSQL ------------------------------------------------------------


@pytest.fixture
async def three(pg_url: str) -> AsyncIterator[list[Store]]:
    """Three stores with pools of their own, as three bot processes have."""
    stores = list(await asyncio.gather(*(Store.open_url(pg_url, pool_size=4) for _ in range(3))))
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def test_processes_starting_at_once_migrate_once(three: list[Store]) -> None:
    assert {await store.schema_version() for store in three} == {SCHEMA_HEAD}
    assert len({store.owner for store in three}) == 3


async def test_fifty_admissions_over_three_pools_start_exactly_the_quota(three: list[Store]) -> None:
    await three[0].settings.update_policy(GUILD, MOD, NOW, default_quota=5, max_running=100)
    origin = Origin(source="discord", guild_id=GUILD, channel_id=5, user_id=1)
    results = await asyncio.gather(
        *(three[n % 3].usage.admit(ALICE, ImageRequest("a cat"), origin, NOW, 3) for n in range(50))
    )
    assert sum(1 for decision, _ in results if decision.allowed) == 5
    assert {decision.reason for decision, _ in results} == {None, QUOTA}


async def test_the_guild_cap_holds_across_pools(three: list[Store]) -> None:
    await three[0].settings.update_policy(GUILD, MOD, NOW, default_quota=50, daily_cap=7, max_running=100)
    members = [Member(GUILD, user) for user in range(1, 11)]
    results = await asyncio.gather(
        *(
            three[n % 3].usage.admit(members[n % 10], ImageRequest("a cat"),
                               Origin(guild_id=GUILD, user_id=members[n % 10].user_id), NOW, 50)
            for n in range(40)
        )
    )  # fmt: skip
    assert sum(1 for decision, _ in results if decision.allowed) == 7


async def running_jobs(store: Store, count: int) -> list[int]:
    ids = []
    for n in range(count):
        job = await store.jobs.create(ImageRequest(f"job {n}"), ORIGIN, NOW)
        await store.jobs.mark_running(job.id, f"task-{n}", NOW, NOW)
        ids.append(job.id)
    return ids


async def test_no_job_is_claimed_by_two_processes(three: list[Store]) -> None:
    ids = await running_jobs(three[0], 60)
    claims = await asyncio.gather(
        *(three[n % 3].jobs.claim_due("discord", NOW + 1, 7, 30.0) for n in range(12))
    )
    claimed = [job.id for batch in claims for job in batch]
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


async def test_a_dead_process_s_jobs_come_back_when_their_leases_expire(three: list[Store]) -> None:
    alive, dead, starting = three
    ids = await running_jobs(dead, 3)
    assert len(await dead.jobs.claim_due("discord", NOW + 1, 10, 30.0)) == 3
    queued = await dead.jobs.create(ImageRequest("not sent yet"), ORIGIN, NOW + 1)
    # A process starting meanwhile takes nothing the other one holds.
    await starting.jobs.reset_leases("discord", NOW + 2)
    assert await starting.jobs.to_resume("discord", now=NOW + 2) == []
    assert await alive.jobs.claim_due("discord", NOW + 2, 10, 30.0) == []
    # The holder never comes back: its poll leases end after 30 s, its queued job after WORK_LEASE.
    assert sorted(j.id for j in await alive.jobs.claim_due("discord", NOW + 32, 10, 30.0)) == ids
    from bot.adapters.store.jobs_repo import WORK_LEASE

    resumed = await starting.jobs.to_resume("discord", now=NOW + 2 + WORK_LEASE)
    assert [j.id for j in resumed] == [queued.id]
    assert await alive.jobs.to_resume("discord", now=NOW + 3 + WORK_LEASE) == []  # now held by `starting`


async def test_renewed_leases_are_kept_and_lapsed_ones_are_taken_over(three: list[Store]) -> None:
    """A live process renews what it works on, so nobody takes it; what a dead one held comes back
    through `take_over_jobs` once its lease ends (not only at start-up), and only once."""
    live, dead, other = three
    lease = live.lease
    kept = await live.jobs.create(ImageRequest("being sent"), ORIGIN, NOW)
    [polled] = await running_jobs(live, 1)
    assert [j.id for j in await live.jobs.claim_due("discord", NOW + 1, 10, lease)] == [polled]
    left = [await dead.jobs.create(ImageRequest(f"left {n}"), ORIGIN, NOW) for n in range(3)]
    assert await dead.jobs.mark_running(left[1].id, "t-left", NOW, NOW)
    assert await dead.jobs.mark_completed(left[1].id, ["https://x/1.png"], NOW, None)
    assert await dead.jobs.mark_submitting(left[2].id)
    later = NOW + lease - 1
    assert await live.jobs.renew_leases([kept.id], [polled], later, lease) == 2
    assert await other.jobs.take_over("discord", later, lease, 10) == []  # nothing has lapsed yet
    after = NOW + lease + 1
    taken = await other.jobs.take_over("discord", after, lease, 2)  # a batch of two, then the rest
    taken += await other.jobs.take_over("discord", after, lease, 2)
    assert [(j.id, j.status) for j in taken] == [
        (left[0].id, JobStatus.QUEUED),
        (left[1].id, JobStatus.COMPLETED),
        (left[2].id, JobStatus.SUBMITTING),
    ]
    assert await live.jobs.take_over("discord", after + 1, lease, 10) == []  # `other` holds them now
    # The renewed poll claim still holds: the job is not due for anyone else.
    assert await other.jobs.claim_due("discord", after, 10, lease) == []
    # A clean stop ends its leases at once: the others take its work over on their next round,
    # the job whose poll it had claimed too (claimed by the taker, to be polled at once).
    await live.close()
    taken = await other.jobs.take_over("discord", after + 2, lease, 10)
    assert [(j.id, j.status) for j in taken] == [(kept.id, JobStatus.QUEUED), (polled, JobStatus.RUNNING)]
    assert await dead.jobs.claim_due("discord", after + 3, 10, lease) == []  # the taker's claim holds


async def test_a_dead_processs_poll_claims_are_taken_over_ahead_of_due_polls(three: list[Store]) -> None:
    """Take-over does not wait behind ordinary polling: a poll claim that ran out comes back through
    `take_over_jobs` whatever the number of due polls; a running job between polls carries no lease."""
    live, dead, _ = three
    lease = live.lease
    ids = await running_jobs(live, 5)
    [claimed] = await dead.jobs.claim_due("discord", NOW + 1, 1, lease)
    assert await live.jobs.take_over("discord", NOW + lease, lease, 10) == []  # the claim still holds
    # Later: every other job is due (a backlog), and the dead process's claim has run out.
    later = NOW + lease + 2
    taken = await live.jobs.take_over("discord", later, lease, 10)
    assert [(j.id, j.status) for j in taken] == [(claimed.id, JobStatus.RUNNING)]
    due = await live.jobs.claim_due("discord", later, 10, lease)
    assert sorted(j.id for j in due) == sorted(set(ids) - {claimed.id})
    for job in due:
        assert await live.jobs.record_poll(job.id, "processing", None, later + 30, 0)
    # Recorded polls leave no lease behind, and the taker's claim holds: nothing to take over.
    assert await dead.jobs.take_over("discord", later + 1, lease, 10) == []


async def test_a_clean_stop_hands_its_jobs_over_at_once(pg_url: str) -> None:
    first, second = await Store.open_url(pg_url), await Store.open_url(pg_url)
    try:
        ids = await running_jobs(first, 2)
        await first.jobs.claim_due("discord", NOW + 1, 10, 30.0)
        queued = await first.jobs.create(ImageRequest("not sent yet"), ORIGIN, NOW + 1)
        await first.close()
        assert [j.id for j in await second.jobs.to_resume("discord", now=NOW + 2)] == [queued.id]
        assert sorted(j.id for j in await second.jobs.claim_due("discord", NOW + 2, 10, 30.0)) == ids
    finally:
        await first.close()
        await second.close()


async def test_writes_outside_the_write_path_fail_and_the_password_is_never_shown(pg_url: str) -> None:
    store = await Store.open_url(pg_url)
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await store.backend.run(lambda s: s.rows("INSERT INTO meta (key, value) VALUES ('k', 'v')"))
    finally:
        await store.close()
    assert redact("postgresql://bot:s3cret@db:5432/bot") == "postgresql://bot:***@db:5432/bot"
    with pytest.raises(psycopg.OperationalError) as caught:
        await Store.open_url("postgresql://bot:s3cret@127.0.0.1:1/bot?connect_timeout=2")
    assert "s3cret" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def _half_then_fail(s: Any) -> None:
    with s.write() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
        tx.execute("INSERT INTO meta (key, value) VALUES ('a', '2')")  # the same key: refused
        tx.execute("INSERT INTO meta (key, value) VALUES ('b', '3')")


async def test_a_write_that_fails_half_way_leaves_nothing(any_store: Store) -> None:
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await any_store.backend.run(_half_then_fail)
    assert await any_store.ops.get_meta("a") is None
    assert await any_store.ops.get_meta("b") is None
    # The connection is whole again: the next write commits.
    for _ in range(10):
        await any_store.ops.set_meta("a", "ok")
    assert await any_store.ops.get_meta("a") == "ok"
