"""The small operator repository: is the database answering, how many jobs are in each state, and the
key/value meta table."""

from __future__ import annotations

from dataclasses import dataclass

from bot.adapters.store.interface import Session
from bot.adapters.store.repository import Repository, call
from bot.adapters.store.statements import indexed_by, listed
from bot.core.models import JobStatus


def ping(s: Session) -> None:
    """One trivial read: raises if the database (or the thread serving it) is stuck."""
    s.row("SELECT 1")


def unfinished_jobs_by_status(s: Session, source: str) -> dict[str, int]:
    """Jobs of one source not yet final, by state: an index range, not a scan of the whole history
    (a GROUP BY over 300,000 jobs held the writer thread for 150 ms)."""
    marks, states = listed("state", [status.value for status in JobStatus if not status.is_final])
    rows = s.rows(
        f"SELECT status, COUNT(*) FROM jobs{indexed_by(s.dialect, 'jobs_due')} WHERE source = :source"
        f" AND status IN ({marks}) GROUP BY status",
        {"source": source, **states},
    )
    return {str(status): int(count) for status, count in rows}


def refusals_between(s: Session, since: float, until: float) -> dict[str, int]:
    """Refused requests logged in [since, until), by reason (on the usage table's time index)."""
    rows = s.rows(
        f"SELECT reason, COUNT(*) FROM usage{indexed_by(s.dialect, 'usage_time')}"
        " WHERE created_at >= :since AND created_at < :until AND outcome = 'refused' GROUP BY reason",
        {"since": since, "until": until},
    )
    found: dict[str, int] = {}
    for reason, count in rows:
        found[str(reason or "other")] = found.get(str(reason or "other"), 0) + int(count)
    return found


def quota_overview(s: Session, guild_id: int) -> QuotaOverview:
    row = s.row(
        "SELECT COUNT(daily_limit), SUM(CASE WHEN unlimited != 0 THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN credits > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN credits > 0 THEN credits ELSE 0 END)"
        " FROM user_quotas WHERE guild_id = :guild",
        {"guild": guild_id},
    )
    assert row is not None
    return QuotaOverview(*(int(value or 0) for value in row))


def get_meta(s: Session, key: str) -> str | None:
    row = s.row("SELECT value FROM meta WHERE key = :key", {"key": key})
    return None if row is None else str(row[0])


def set_meta(s: Session, key: str, value: str) -> None:
    with s.write() as tx:
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (:key, :value)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"key": key, "value": value},
        )


@dataclass(frozen=True)
class QuotaOverview:
    """Members with settings of their own in one server."""

    personal_limits: int
    unlimited: int
    credit_holders: int
    credits: int


class Overview(Repository):
    """What operators read, and the key/value meta table: `store.ops`."""

    ping = call(ping)
    unfinished_by_status = call(unfinished_jobs_by_status)
    refusals_between = call(refusals_between)
    quota_overview = call(quota_overview)
    get_meta = call(get_meta)
    set_meta = call(set_meta)
