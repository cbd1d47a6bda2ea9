"""The admission and usage repository: the quota check and reservation in one transaction, the usage
log, and reports on it."""

from __future__ import annotations

import functools
from typing import Any

from bot.adapters.store.interface import Session, Tx
from bot.adapters.store.jobs_repo import job_row
from bot.adapters.store.repository import Repository, call
from bot.adapters.store.statements import indexed_by, listed
from bot.core.models import ImageRequest, Job, Origin
from bot.core.policy.prompt_rules import RuleMatch
from bot.core.policy.quotas import (
    MAX_COUNT,
    Ban,
    Decision,
    GuildPolicy,
    Member,
    Snapshot,
    UserOverride,
    day_bounds,
    decide,
    effective_limit,
    member_count_limit,
    month_start,
)
from bot.core.usage_records import EXPORT_COLUMNS, Stats, UsageSummary

POLICY_COLUMNS = (
    "default_quota",
    "timezone",
    "cooldown_seconds",
    "max_running",
    "daily_cap",
    "exempt_managers",
    "modlog_channel_id",
    "modlog_finished",
    "refund_cancelled",
    "private_images",
    "video_rate",
    "videos_enabled",
    "count_limit",
)


def read_policy(s: Session, guild_id: int) -> GuildPolicy:
    row = s.row(
        f"SELECT {', '.join(POLICY_COLUMNS)} FROM guild_settings WHERE guild_id = :guild", {"guild": guild_id}
    )
    if row is None:
        return GuildPolicy(guild_id)
    values = dict(zip(POLICY_COLUMNS, row, strict=True))
    defaults = GuildPolicy(guild_id)
    return GuildPolicy(
        guild_id=guild_id,
        default_quota=values["default_quota"],
        timezone=values["timezone"] or defaults.timezone,
        cooldown_seconds=values["cooldown_seconds"] if values["cooldown_seconds"] is not None else 0,
        max_running=values["max_running"] if values["max_running"] is not None else defaults.max_running,
        daily_cap=values["daily_cap"],
        exempt_managers=bool(values["exempt_managers"]),
        modlog_channel_id=values["modlog_channel_id"],
        modlog_finished=bool(values["modlog_finished"]),
        refund_cancelled=bool(values["refund_cancelled"]),
        private_images=bool(values["private_images"]),
        video_rate=values["video_rate"] if values["video_rate"] is not None else defaults.video_rate,
        videos_enabled=values["videos_enabled"] is None or bool(values["videos_enabled"]),
        count_limit=values["count_limit"] if values["count_limit"] is not None else defaults.count_limit,
    )


# The units of a row that the member's daily quota paid for: one-off credits paid for the rest.
QUOTA_UNITS = "CASE WHEN counted > used_credit THEN counted - used_credit ELSE 0 END"


def count_limit(s: Session, guild_id: int, user_id: int, role_ids: tuple[int, ...]) -> int:
    """The most images one request of this member may ask for (`quotas.member_count_limit`)."""
    role_limits: dict[int, int] = {}
    if role_ids:
        marks, roles = listed("role", role_ids)
        for role_id, limit in s.rows(
            "SELECT role_id, count_limit FROM role_count_limits"
            f" WHERE guild_id = :guild AND role_id IN ({marks})",
            {"guild": guild_id, **roles},
        ):
            role_limits[int(role_id)] = int(limit)
    row = s.row(
        "SELECT count_limit FROM user_quotas WHERE guild_id = :guild AND user_id = :user",
        {"guild": guild_id, "user": user_id},
    )
    own = int(row[0]) if row is not None and row[0] is not None else None
    return member_count_limit(read_policy(s, guild_id), role_limits, own)


# The units a member has running: each submitted row holds its task's units (an older row, 1).
RUNNING_UNITS = "SELECT COALESCE(SUM(CASE WHEN counted > 1 THEN counted ELSE 1 END), 0)"


def _count(s: Session, sql: str, params: dict[str, Any]) -> int:
    row = s.row(sql, params)
    return int(row[0]) if row and row[0] is not None else 0


def _snapshot(s: Session, member: Member, now: float, global_default: int, policy: GuildPolicy) -> Snapshot:
    guild, user = member.guild_id, member.user_id
    start, _ = day_bounds(now, policy.timezone)
    role_limits: dict[int, int] = {}
    if member.role_ids:
        marks, roles = listed("role", member.role_ids)
        for role_id, limit in s.rows(
            f"SELECT role_id, daily_limit FROM role_quotas WHERE guild_id = :guild AND role_id IN ({marks})",
            {"guild": guild, **roles},
        ):
            role_limits[int(role_id)] = int(limit)
    # One statement for the member's own rows and counts: on PostgreSQL each statement is a round trip.
    hint = functools.partial(indexed_by, s.dialect)
    # `counted` holds units (revision 0014): quotas and caps are sums, not counts.
    cap = (
        f"SELECT COALESCE(SUM(counted), 0) FROM usage{hint('usage_guild_time')}"
        " WHERE guild_id = :guild AND created_at >= :start AND counted > 0"
    )
    last = (
        f"SELECT MAX(created_at) FROM usage{hint('usage_user_time')}"
        " WHERE guild_id = :guild AND user_id = :user AND outcome != 'refused'"
    )
    # The units of that last request (its tasks share its time), whether or not refunded since.
    last_units = (
        f"SELECT COALESCE(SUM(CASE WHEN j.units > 1 THEN j.units ELSE 1 END), 1) FROM usage u"
        " LEFT JOIN jobs j ON j.id = u.job_id"
        " WHERE u.guild_id = :guild AND u.user_id = :user AND u.outcome != 'refused'"
        f" AND u.created_at = ({last})"
    )
    row = s.row(
        "SELECT uq.daily_limit, uq.unlimited, uq.credits, uq.user_id, b.reason, b.expires_at, b.banned_by,"
        " b.user_id,"
        f" (SELECT COALESCE(SUM({QUOTA_UNITS}), 0) FROM usage{hint('usage_user_time')}"
        "  WHERE guild_id = :guild AND user_id = :user AND created_at >= :start AND counted > 0),"
        f" ({RUNNING_UNITS} FROM usage{hint('usage_running')}"
        "  WHERE guild_id = :guild AND user_id = :user AND outcome = 'submitted'),"
        f" ({cap if policy.daily_cap is not None else 'SELECT 0'}),"
        f" ({last if policy.cooldown_seconds > 0 else 'SELECT NULL'}),"
        f" ({last_units if policy.cooldown_seconds > 0 else 'SELECT 1'})"
        " FROM (SELECT 1 AS one) AS one"
        " LEFT JOIN user_quotas uq ON uq.guild_id = :guild AND uq.user_id = :user"
        " LEFT JOIN bans b ON b.guild_id = :guild AND b.user_id = :user",
        {"guild": guild, "user": user, "start": start},
    )
    assert row is not None
    daily_limit, unlimited, credits, has_override, reason, expires_at, banned_by, is_banned = row[:8]
    used_today, running, guild_used, last_at, last_units = row[8:]
    override = (
        UserOverride(daily_limit, bool(unlimited), int(credits or 0))
        if has_override is not None
        else UserOverride()
    )
    ban = Ban(reason, expires_at, banned_by) if is_banned is not None else None
    return Snapshot(
        member=member,
        policy=policy,
        global_default=global_default,
        role_limits=role_limits,
        override=override,
        ban=ban,
        used_today=int(used_today),
        guild_used_today=int(guild_used),
        running=int(running),
        last_request_at=last_at,
        last_request_units=int(last_units or 1),
        now=now,
    )


# -- admission -------------------------------------------------------------------------------------


def reserve(
    s: Session, tx: Tx, usage: dict[str, Any], job: dict[str, Any], request_id: int | None = None
) -> dict[str, Any]:
    """Write one task's usage row and job pointing at each other; the job row as written. Both carry
    the request's id: `request_id`, or for a request's first task (None) the job's own id. On
    PostgreSQL in one statement (round trips are most of an admission's time there); SQLite, which
    has no data-modifying CTEs and no round trips, writes them one by one."""
    if s.dialect != "postgresql":
        usage_id = tx.insert("usage", {**usage, "request_id": request_id})
        row = {**job, "usage_id": usage_id, "request_id": request_id}
        [written] = tx.dicts(
            f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join(f':{c}' for c in row)}) RETURNING *", row
        )
        if request_id is None:
            written["request_id"] = written["id"]
            tx.execute("UPDATE jobs SET request_id = id WHERE id = :id", {"id": written["id"]})
        tx.execute(
            "UPDATE usage SET job_id = :job, request_id = :request WHERE id = :id",
            {"job": written["id"], "request": written["request_id"], "id": usage_id},
        )
        return written
    # The sub-statements of one WITH cannot see each other's rows, so the job's id is drawn first and
    # both rows are written already pointing at each other.
    params = {f"u_{c}": v for c, v in usage.items()} | {f"j_{c}": v for c, v in job.items()}
    params["request"] = request_id
    request = "COALESCE(CAST(:request AS BIGINT), ids.job_id)"
    [written] = tx.dicts(
        "WITH ids AS (SELECT nextval(pg_get_serial_sequence('jobs', 'id')) AS job_id),"
        f" u AS (INSERT INTO usage ({', '.join(usage)}, job_id, request_id)"
        f" SELECT {', '.join(f':u_{c}' for c in usage)}, ids.job_id, {request} FROM ids RETURNING id)"
        f" INSERT INTO jobs (id, {', '.join(job)}, usage_id, request_id)"
        f" SELECT ids.job_id, {', '.join(f':j_{c}' for c in job)}, u.id, {request} FROM ids, u RETURNING *",
        params,
    )
    return written


def credit_shares(count: int, units_per_task: int, credit_units: int) -> list[int]:
    """The credits each task pays for, the last tasks first: the quota covers the first units, so a
    refunded task gives back exactly the credits it used."""
    shares = [0] * count
    for index in reversed(range(count)):
        shares[index] = min(units_per_task, credit_units)
        credit_units -= shares[index]
    return shares


def reserve_tasks(
    s: Session,
    tx: Tx,
    usage: dict[str, Any],
    job: dict[str, Any],
    count: int,
    units_per_task: int,
    credit_units: int = 0,
) -> list[Job]:
    """The request's `count` tasks: a usage row and a job each, numbered 1..count, all with the first
    job's id as the request's, each counting `units_per_task` units."""
    jobs: list[Job] = []
    request_id: int | None = None
    for index, credit in enumerate(credit_shares(count, units_per_task, credit_units), start=1):
        task_usage = {**usage, "outcome": "submitted", "counted": units_per_task, "used_credit": credit}
        task = {**job, "request_index": index, "request_size": count, "units": units_per_task}
        written = reserve(s, tx, task_usage, task, request_id)
        request_id = int(written["request_id"])
        jobs.append(Job.from_row(written))
    return jobs


def usage_row(request: ImageRequest, origin: Origin, user_id: int, now: float) -> dict[str, Any]:
    """The usage row's columns every task of a request (or its refusal) shares."""
    return {
        "guild_id": origin.guild_id,
        "context": origin.context,
        "channel_id": origin.channel_id,
        "user_id": user_id,
        "created_at": now,
        # As sent (with the style's text): what the prompt rules were checked against.
        "prompt": request.full_prompt,
        "style": request.style,
        "aspect_ratio": request.aspect_ratio,
        "ref_count": len(request.reference_urls),
        "media": request.media,
        "video_seconds": request.video_seconds,
        "source_job_id": request.source_job_id,
        "source_image_index": request.source_image_index,
    }


def check_count(count: int, units_per_task: int) -> None:
    if not 1 <= count <= MAX_COUNT or units_per_task < 1:
        raise ValueError(f"a request is 1-{MAX_COUNT} tasks of at least 1 unit ({count} x {units_per_task})")


def admit(
    s: Session,
    member: Member,
    request: ImageRequest,
    origin: Origin,
    now: float,
    global_default: int,
    rule_match: RuleMatch | None = None,
    *,
    count: int = 1,
    units_per_task: int = 1,
) -> tuple[Decision, list[Job]]:
    """Check bans and quotas for `count` tasks of `units_per_task` units and, if they all fit,
    reserve them and write their jobs: one transaction, so simultaneous requests can never overspend
    a quota, even from other processes. The prompt rules were checked before, outside the
    transaction (`bot.rulebook`); `rule_match` is what they found. Refused: no job, one usage row
    saying why, and `Decision.fits` tells how many tasks would have fitted."""
    check_count(count, units_per_task)
    with s.write() as tx:
        policy = read_policy(s, member.guild_id)
        # Everything the decision reads is the member's own rows, plus the guild's count when the
        # guild has a daily cap: holding that one lock makes the check and the reservation atomic.
        if policy.daily_cap is not None:
            s.lock(tx, "admit-guild", member.guild_id)
        else:
            s.lock(tx, "admit", member.guild_id, member.user_id)
        snapshot = _snapshot(s, member, now, global_default, policy)
        decision = decide(snapshot, rule_match, count, units_per_task)
        usage = {**usage_row(request, origin, member.user_id, now), "guild_id": member.guild_id}
        if not decision.allowed:
            detail = decision.matched_rule.describe() if decision.matched_rule else None
            tx.insert("usage", {**usage, "outcome": "refused", "reason": decision.reason, "detail": detail})
            return decision, []
        if decision.credit_units:
            tx.execute(
                "UPDATE user_quotas SET credits = credits - :units"
                " WHERE guild_id = :guild AND user_id = :user",
                {"units": decision.credit_units, "guild": member.guild_id, "user": member.user_id},
            )
        job = job_row(request, origin, now, s.owner, s.lease)
        jobs = reserve_tasks(s, tx, usage, job, count, units_per_task, decision.credit_units)
    return decision, jobs


def log_refusal(
    s: Session,
    *,
    guild_id: int | None,
    channel_id: int | None,
    user_id: int,
    prompt: str | None,
    aspect_ratio: str | None,
    ref_count: int,
    reason: str,
    detail: str | None,
    now: float,
    context: str | None = None,
) -> None:
    """A request refused before admission (bad input): logged, never counted."""
    row = {
        "guild_id": guild_id,
        "context": context,
        "channel_id": channel_id,
        "user_id": user_id,
        "created_at": now,
        "prompt": (prompt or "")[:6000],
        "aspect_ratio": aspect_ratio,
        "ref_count": ref_count,
        "outcome": "refused",
        "reason": reason,
        "detail": detail,
    }
    with s.write() as tx:
        tx.insert("usage", row)


# -- what members and moderators read ---------------------------------------------------------------


def usage_summary(s: Session, member: Member, now: float, global_default: int) -> UsageSummary:
    snapshot = _snapshot(s, member, now, global_default, read_policy(s, member.guild_id))
    _, reset = day_bounds(now, snapshot.policy.timezone)
    month = _count(
        s,
        f"SELECT COALESCE(SUM(counted), 0) FROM usage{indexed_by(s.dialect, 'usage_user_time')}"
        " WHERE guild_id = :guild AND user_id = :user AND created_at >= :start AND counted > 0",
        {
            "guild": member.guild_id,
            "user": member.user_id,
            "start": month_start(now, snapshot.policy.timezone),
        },
    )
    ban = snapshot.ban
    banned = ban is not None and (ban.expires_at is None or ban.expires_at > now)
    return UsageSummary(
        used_today=snapshot.used_today,
        used_month=month,
        limit=effective_limit(snapshot),
        credits=snapshot.override.credits,
        running=snapshot.running,
        resets_at=reset,
        banned_until=ban.expires_at if banned and ban else None,
        banned=banned,
    )


def stats(s: Session, guild_id: int | None, since: float) -> Stats:
    """One server's report, or (guild None) every server's; personal use is reported apart."""
    where = "guild_id = :guild AND created_at >= :since" if guild_id else (
        "guild_id IS NOT NULL AND created_at >= :since")  # fmt: skip
    return stats_where(s, where, {"guild": guild_id, "since": since})


def stats_where(s: Session, where: str, params: dict[str, Any]) -> Stats:
    counts: dict[str, int] = {}
    refusals: dict[str, int] = {}
    for outcome, reason, count in s.rows(
        f"SELECT outcome, reason, COUNT(*) FROM usage WHERE {where} GROUP BY outcome, reason", params
    ):
        if outcome == "refused":
            key = str(reason or "other")
            refusals[key] = refusals.get(key, 0) + int(count)
        else:
            counts[str(outcome)] = counts.get(str(outcome), 0) + int(count)
    top = [
        (int(user), int(count))
        for user, count in s.rows(
            f"SELECT user_id, COUNT(*) AS n FROM usage WHERE {where} AND outcome != 'refused'"
            " GROUP BY user_id ORDER BY n DESC, user_id LIMIT 5",
            params,
        )
    ]
    failed = counts.get("failed", 0) + counts.get("timed_out", 0)
    return Stats(
        generations=sum(counts.values()),
        completed=counts.get("completed", 0),
        failed=failed,
        refusals=dict(sorted(refusals.items(), key=lambda item: -item[1])),
        top_users=top,
    )


def export_usage(s: Session, guild_id: int, start: float, end: float, limit: int) -> list[tuple[Any, ...]]:
    return s.rows(
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM usage{indexed_by(s.dialect, 'usage_guild_time')}"
        " WHERE guild_id = :guild AND created_at >= :start AND created_at < :end ORDER BY created_at, id"
        " LIMIT :limit",
        {"guild": guild_id, "start": start, "end": end, "limit": limit},
    )


class Usage(Repository):
    """Admission under a server's quotas, the usage log, and reports on it: `store.usage`."""

    admit = call(admit)
    log_refusal = call(log_refusal)
    summary = call(usage_summary)
    stats = call(stats)
    export = call(export_usage)
