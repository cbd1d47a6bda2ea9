"""What operators ask of the database: is it answering, and how many jobs are in each state."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import JobStatus
from bot.store.base import StoreBase


class OpsQueries(StoreBase):
    async def ping(self) -> None:
        """One trivial read on the writer thread: raises if the database (or that thread) is stuck."""
        await self._run(self._ping)

    def _ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    async def unfinished_jobs_by_status(self, source: str) -> dict[str, int]:
        """Jobs of one source not yet final, by state: an index range, not a scan of the whole history
        (a GROUP BY over 300,000 jobs held the writer thread for 150 ms)."""
        return await self._run(self._unfinished_by_status, source)

    def _unfinished_by_status(self, source: str) -> dict[str, int]:
        states = [status.value for status in JobStatus if not status.is_final]
        rows = self._db.execute(
            f"SELECT status, COUNT(*) FROM jobs INDEXED BY jobs_due WHERE source = ?"
            f" AND status IN ({', '.join('?' for _ in states)}) GROUP BY status",
            [source, *states],
        ).fetchall()
        return {str(status): int(count) for status, count in rows}

    async def refusals_between(self, since: float, until: float) -> dict[str, int]:
        """Refused requests logged in [since, until), by reason (on the usage table's time index)."""
        return await self._run(self._refusals_between, since, until)

    def _refusals_between(self, since: float, until: float) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT reason, COUNT(*) FROM usage INDEXED BY usage_time"
            " WHERE created_at >= ? AND created_at < ? AND outcome = 'refused' GROUP BY reason",
            [since, until],
        ).fetchall()
        return {str(reason or "other"): int(count) for reason, count in rows}

    async def quota_overview(self, guild_id: int) -> QuotaOverview:
        return await self._run(self._quota_overview, guild_id)

    def _quota_overview(self, guild_id: int) -> QuotaOverview:
        row = self._db.execute(
            "SELECT COUNT(daily_limit), COALESCE(SUM(unlimited != 0), 0),"
            " COALESCE(SUM(credits > 0), 0), COALESCE(SUM(MAX(credits, 0)), 0)"
            " FROM user_quotas WHERE guild_id = ?",
            [guild_id],
        ).fetchone()
        return QuotaOverview(*(int(value or 0) for value in row))


@dataclass(frozen=True)
class QuotaOverview:
    """Members with settings of their own in one server."""

    personal_limits: int
    unlimited: int
    credit_holders: int
    credits: int
