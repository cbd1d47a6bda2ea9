"""The personal-use repository: admission under the personal quota (usage rows with no server and the
context they came from), the operator's bans from personal use, interaction follow-up counts, and
reports on personal use."""

from __future__ import annotations

from dataclasses import dataclass

from bot.adapters.store.interface import Session
from bot.adapters.store.jobs_repo import job_row
from bot.adapters.store.repository import Repository, call
from bot.adapters.store.statements import indexed_by
from bot.adapters.store.usage_repo import RUNNING_UNITS, check_count, reserve_tasks, stats_where, usage_row
from bot.core.models import ImageRequest, Job, Origin
from bot.core.policy.prompt_rules import RuleMatch
from bot.core.policy.quotas import Ban, Decision, PersonalSnapshot, day_bounds, decide_personal, month_start
from bot.core.usage_records import Stats, UsageSummary

PERSONAL = "guild_id IS NULL"


@dataclass(frozen=True)
class PersonalBan:
    user_id: int
    reason: str | None
    created_at: float
    expires_at: float | None


@dataclass(frozen=True)
class PersonalStats:
    """Personal use over one window: the usual report, split by where it came from."""

    stats: Stats
    by_context: dict[str, int]
    people: int


def _ban(s: Session, user_id: int) -> Ban | None:
    row = s.row("SELECT reason, expires_at FROM personal_bans WHERE user_id = :user", {"user": user_id})
    return Ban(row[0], row[1]) if row is not None else None


def _snapshot(s: Session, user_id: int, now: float, limit: int, max_running: int) -> PersonalSnapshot:
    start, _ = day_bounds(now, "UTC")
    row = s.row(
        "SELECT"
        f" (SELECT COALESCE(SUM(counted), 0) FROM usage{indexed_by(s.dialect, 'usage_user_time')}"
        f"  WHERE {PERSONAL} AND user_id = :user AND created_at >= :start AND counted > 0),"
        f" ({RUNNING_UNITS} FROM usage{indexed_by(s.dialect, 'usage_running')}"
        f"  WHERE {PERSONAL} AND user_id = :user AND outcome = 'submitted')",
        {"user": user_id, "start": start},
    )
    assert row is not None
    return PersonalSnapshot(
        user_id=user_id,
        limit=limit,
        ban=_ban(s, user_id),
        used_today=int(row[0]),
        running=int(row[1]),
        max_running=max_running,
        now=now,
    )


def admit_personal(
    s: Session,
    user_id: int,
    request: ImageRequest,
    origin: Origin,
    now: float,
    limit: int,
    max_running: int,
    rule_match: RuleMatch | None = None,
    *,
    count: int = 1,
    units_per_task: int = 1,
) -> tuple[Decision, list[Job]]:
    """Personal admission of `count` tasks of `units_per_task` units: ban, concurrency and the daily
    personal quota checked and every task reserved in one transaction, serialised per person
    (PostgreSQL: an advisory lock on the user), so requests from several places at once can never
    overspend it. Refused: no job, one usage row, and `Decision.fits` as for a server."""
    check_count(count, units_per_task)
    with s.write() as tx:
        s.lock(tx, "admit-personal", user_id)
        snapshot = _snapshot(s, user_id, now, limit, max_running)
        decision = decide_personal(snapshot, rule_match, count, units_per_task)
        # Personal use has no server and no styles: the member's own prompt.
        usage = {**usage_row(request, origin, user_id, now), "guild_id": None, "prompt": request.prompt}
        if not decision.allowed:
            tx.insert("usage", {**usage, "outcome": "refused", "reason": decision.reason})
            return decision, []
        job = {**job_row(request, origin, now, s.owner, s.lease), "guild_id": None}
        jobs = reserve_tasks(s, tx, usage, job, count, units_per_task)
    return decision, jobs


def personal_usage_summary(
    s: Session, user_id: int, now: float, limit: int, max_running: int
) -> UsageSummary:
    snapshot = _snapshot(s, user_id, now, limit, max_running)
    _, reset = day_bounds(now, "UTC")
    month = s.row(
        f"SELECT COALESCE(SUM(counted), 0) FROM usage WHERE {PERSONAL} AND user_id = :user"
        " AND created_at >= :start AND counted > 0",
        {"user": user_id, "start": month_start(now, "UTC")},
    )
    ban = snapshot.ban
    banned = ban is not None and (ban.expires_at is None or ban.expires_at > now)
    return UsageSummary(
        used_today=snapshot.used_today,
        used_month=int(month[0]) if month else 0,
        limit=limit,
        credits=0,
        running=snapshot.running,
        resets_at=reset,
        banned_until=ban.expires_at if banned and ban else None,
        banned=banned,
    )


# -- the operator's bans -----------------------------------------------------------------------------


def ban(s: Session, user_id: int, *, reason: str | None, expires_at: float | None, now: float) -> None:
    with s.write() as tx:
        row = {"user_id": user_id, "reason": reason, "created_at": now, "expires_at": expires_at}
        tx.execute("DELETE FROM personal_bans WHERE user_id = :user_id", row)
        tx.execute(
            "INSERT INTO personal_bans (user_id, reason, created_at, expires_at)"
            " VALUES (:user_id, :reason, :created_at, :expires_at)",
            row,
        )


def unban(s: Session, user_id: int) -> bool:
    with s.write() as tx:
        return tx.execute("DELETE FROM personal_bans WHERE user_id = :user", {"user": user_id}).rowcount > 0


def bans(s: Session, now: float) -> list[PersonalBan]:
    """Bans in force, newest first (lapsed ones are left out)."""
    return [
        PersonalBan(int(user), reason, float(created), expires)
        for user, reason, created, expires in s.rows(
            "SELECT user_id, reason, created_at, expires_at FROM personal_bans"
            " WHERE expires_at IS NULL OR expires_at > :now ORDER BY created_at DESC, user_id",
            {"now": now},
        )
    ]


# -- reports -----------------------------------------------------------------------------------------


def personal_stats(s: Session, since: float) -> PersonalStats:
    window = {"since": since}
    report = stats_where(s, f"{PERSONAL} AND created_at >= :since", window)
    by_context: dict[str, int] = {}
    for context, count in s.rows(
        f"SELECT context, COUNT(*) FROM usage WHERE {PERSONAL} AND created_at >= :since"
        " AND outcome != 'refused' GROUP BY context",
        window,
    ):
        by_context[str(context or "unknown")] = int(count)
    people = s.row(
        f"SELECT COUNT(DISTINCT user_id) FROM usage WHERE {PERSONAL} AND created_at >= :since", window
    )
    return PersonalStats(report, by_context, int(people[0]) if people else 0)


class Personal(Repository):
    """Personal use (the app on a person's account): `store.personal`."""

    admit = call(admit_personal)
    summary = call(personal_usage_summary)
    ban = call(ban)
    unban = call(unban)
    bans = call(bans)
    stats = call(personal_stats)
