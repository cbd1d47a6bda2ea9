"""The statistics repository: the read queries behind the dashboard's charts (images per time slot,
per member, refusals and failures by reason, times to image, today's use per member), each over one
server and one window of the usage log, on the indexes the admission already keeps (`usage_guild_time`).

Days are the server's days (its time zone), which SQL cannot cut portably: the queries count by
quarter hour in UTC (every time zone's offset is a whole number of quarter hours) and the caller folds
those slots into local days. A month is at most 2,976 slots, a small answer."""

from __future__ import annotations

from typing import Any

from bot.adapters.store.interface import Session
from bot.adapters.store.repository import Repository, call
from bot.adapters.store.statements import indexed_by

SLOT_SECONDS = 900


def _slot(dialect: str) -> str:
    # SQLite truncates toward zero when casting; PostgreSQL rounds, so it needs FLOOR (times are positive).
    if dialect == "postgresql":
        return f"FLOOR(created_at / {SLOT_SECONDS})"
    return f"CAST(created_at / {SLOT_SECONDS} AS INTEGER)"


def _in_window(
    s: Session,
    columns: str,
    condition: str,
    rest: str,
    guild_id: int,
    since: float,
    until: float,
    **more: Any,
) -> list[tuple[Any, ...]]:
    """`SELECT columns` from the server's usage rows of [since, until) that meet `condition`, on the
    guild-and-time index, then `rest` (GROUP BY, ORDER BY, LIMIT)."""
    return s.rows(
        f"SELECT {columns} FROM usage{indexed_by(s.dialect, 'usage_guild_time')}"
        f" WHERE guild_id = :guild AND created_at >= :since AND created_at < :until AND {condition} {rest}",
        {"guild": guild_id, "since": since, "until": until, **more},
    )


def completed_by_slot(s: Session, guild_id: int, since: float, until: float) -> list[tuple[int, int]]:
    """(slot, finished images) with slot = floor(created_at / SLOT_SECONDS), for the window."""
    rows = _in_window(
        s,
        f"{_slot(s.dialect)} AS slot, COUNT(*)",
        "outcome = 'completed'",
        "GROUP BY slot",
        guild_id,
        since,
        until,
    )
    return [(int(slot), int(count)) for slot, count in rows]


def completed_by_member(
    s: Session, guild_id: int, since: float, until: float, limit: int
) -> list[tuple[int, int]]:
    """(member, finished images), most first, at most `limit` members."""
    rows = _in_window(
        s,
        "user_id, COUNT(*) AS n",
        "outcome = 'completed'",
        "GROUP BY user_id ORDER BY n DESC, user_id LIMIT :limit",
        guild_id,
        since,
        until,
        limit=limit,
    )
    return [(int(user), int(count)) for user, count in rows]


def refusals_by_reason(s: Session, guild_id: int, since: float, until: float) -> list[tuple[str, int]]:
    """(reason, refused requests), most first: quota, cooldown, banned, blocked_prompt, ..."""
    rows = _in_window(
        s,
        "reason, COUNT(*) AS n",
        "outcome = 'refused'",
        "GROUP BY reason ORDER BY n DESC",
        guild_id,
        since,
        until,
    )
    found: dict[str, int] = {}
    for reason, count in rows:
        key = str(reason or "other")
        found[key] = found.get(key, 0) + int(count)
    return sorted(found.items(), key=lambda item: (-item[1], item[0]))


def failures_by_error(
    s: Session, guild_id: int, since: float, until: float, limit: int
) -> list[tuple[str, int]]:
    """(the job's stored failure text, failed or timed-out jobs), most first."""
    rows = s.rows(
        f"SELECT j.error, COUNT(*) AS n FROM usage u{indexed_by(s.dialect, 'usage_guild_time')}"
        " JOIN jobs j ON j.id = u.job_id"
        " WHERE u.guild_id = :guild AND u.created_at >= :since AND u.created_at < :until"
        " AND u.outcome IN ('failed', 'timed_out') GROUP BY j.error ORDER BY n DESC LIMIT :limit",
        {"guild": guild_id, "since": since, "until": until, "limit": limit},
    )
    return [(str(error or ""), int(count)) for error, count in rows]


def durations(s: Session, guild_id: int, since: float, until: float, limit: int) -> list[float]:
    """Seconds from request to image of the window's finished images (the newest `limit`)."""
    rows = _in_window(
        s,
        "duration",
        "outcome = 'completed' AND duration IS NOT NULL",
        "ORDER BY created_at DESC LIMIT :limit",
        guild_id,
        since,
        until,
        limit=limit,
    )
    return [float(value) for (value,) in rows]


def counted_by_member(s: Session, guild_id: int, since: float, limit: int) -> list[tuple[int, int]]:
    """(member, units counted since `since`), most first: the busiest members of the day. (`counted`
    holds units since revision 0014: a request of several images, or a video, counts more than one.)"""
    rows = s.rows(
        f"SELECT user_id, SUM(counted) AS n FROM usage{indexed_by(s.dialect, 'usage_guild_time')}"
        " WHERE guild_id = :guild AND created_at >= :since AND counted > 0"
        " GROUP BY user_id ORDER BY n DESC, user_id LIMIT :limit",
        {"guild": guild_id, "since": since, "limit": limit},
    )
    return [(int(user), int(count)) for user, count in rows]


def counted_total(s: Session, guild_id: int, since: float) -> int:
    """Units counting against the server cap since `since` (as the admission sums them)."""
    row = s.row(
        f"SELECT COALESCE(SUM(counted), 0) FROM usage{indexed_by(s.dialect, 'usage_guild_time')}"
        " WHERE guild_id = :guild AND created_at >= :since AND counted > 0",
        {"guild": guild_id, "since": since},
    )
    return int(row[0]) if row and row[0] is not None else 0


class Statistics(Repository):
    """Reads for the dashboard's charts: `store.stats`."""

    completed_by_slot = call(completed_by_slot)
    completed_by_member = call(completed_by_member)
    refusals_by_reason = call(refusals_by_reason)
    failures_by_error = call(failures_by_error)
    durations = call(durations)
    counted_by_member = call(counted_by_member)
    counted_total = call(counted_total)
