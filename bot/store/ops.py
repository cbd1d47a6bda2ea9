"""What operators ask of the database: is it answering, and how many jobs are in each state."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.base import StoreBase


class OpsQueries(StoreBase):
    async def ping(self) -> None:
        """One trivial read on the writer thread: raises if the database (or that thread) is stuck."""
        await self._run(self._ping)

    def _ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    async def jobs_by_status(self) -> dict[str, int]:
        return await self._run(self._jobs_by_status)

    def _jobs_by_status(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {str(status): int(count) for status, count in rows}

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
