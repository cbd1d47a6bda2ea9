"""What operators ask of the database: is it answering, and how many jobs are in each state."""

from __future__ import annotations

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
