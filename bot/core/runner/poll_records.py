"""Poll bookkeeping written in groups: each poll's outcome (its next poll time, the status the service
gave, the errors in a row) reaches the store in one transaction with the others that finish meanwhile.

A poll used to cost a write transaction of its own (four round trips to PostgreSQL and a turn of the
store's thread pool), the largest part of a poll's cost in the profile of `python -m bench --only
capacity`. Now one background write carries every poll outcome waiting when it starts, and the polls
that finish while it is out go with the next one ("group commit"): one transaction per round however
many polls finish, and no timer, so no added delay when polls are few.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.core.runner.ports import PollRecord

Write = Callable[[list[PollRecord]], Awaitable[set[int]]]
Spawn = Callable[[Coroutine[Any, Any, None]], object]


class PollRecords:
    def __init__(self, write: Write, spawn: Spawn) -> None:
        self._write = write
        self._spawn = spawn
        self._pending: list[tuple[PollRecord, asyncio.Future[bool]]] = []
        self._writing = False

    async def record(self, record: PollRecord) -> bool:
        """Write one poll's outcome with the others; False if its job is no longer running (cancelled
        meanwhile). A failed write raises its error in every poll it carried."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((record, done))
        if not self._writing:
            self._writing = True
            self._spawn(self._drain())
        return await done

    async def _drain(self) -> None:
        batch: list[tuple[PollRecord, asyncio.Future[bool]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    running = await self._write([record for record, _ in batch])
                except Exception as error:  # noqa: BLE001 - each poll handles it, as its own write's
                    for _, done in batch:
                        if not done.done():  # a poll cancelled meanwhile no longer waits
                            done.set_exception(error)
                else:
                    for record, done in batch:
                        if not done.done():
                            done.set_result(record.job_id in running)
                batch = []
        finally:
            self._writing = False
            # Cancelled (a stop past its grace): nobody may wait for a write that will not come.
            for _, done in batch + self._pending:
                done.cancel()
            self._pending = []
