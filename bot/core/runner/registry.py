"""The registry of what this process holds: the jobs it works on, their background tasks and leases.

One place answers "is this job in my hands?" for the lease loop (renew what is held, take over the
rest), for delivery (one delivery per job at a time) and for a clean stop (wait for in-flight work).
The lease duration comes from the store (JOB_LEASE_SECONDS), the one setting that decides it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

log = logging.getLogger("bot.core.runner")

# How long (real seconds) an admitted job is held for its acknowledgement before `launch`: Discord
# allows 3 seconds for it, a slow follow-up a little more.
ACKNOWLEDGE_HOLD = 60.0

# The groups of background tasks: submits (a stop gives them a grace), other work on jobs (polls,
# deliveries, endings; a grace too) and later delivery attempts (cancelled at once on stop).
Group = Literal["submits", "work", "later"]


class Registry:
    def __init__(self, lease: float, on_poll_done: Callable[[], None]) -> None:
        self.lease = lease
        self._on_poll_done = on_poll_done
        self._tasks: dict[Group, set[asyncio.Task[Any]]] = {"submits": set(), "work": set(), "later": set()}
        # A count per job: one job may be submitted, delivered and told at once.
        self._working: collections.Counter[int] = collections.Counter()
        self._polling: collections.Counter[int] = collections.Counter()
        self._acknowledging: dict[int, float] = {}  # job -> monotonic deadline
        self._delivering: set[int] = set()

    # -- tasks -------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], group: Group = "work") -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks[group].add(task)
        task.add_done_callback(self._tasks[group].discard)
        task.add_done_callback(_reap)
        return task

    def spawn_for(
        self, job_id: int, coro: Coroutine[Any, Any, Any], group: Group = "work", *, poll: bool = False
    ) -> asyncio.Task[Any]:
        """Work on one job: while the task runs, the job is held (its lease renewed)."""
        counter = self._polling if poll else self._working
        counter[job_id] += 1
        task = self.spawn(coro, group)

        def release(_: asyncio.Task[Any]) -> None:
            counter[job_id] -= 1
            if counter[job_id] <= 0:
                del counter[job_id]
            if poll:
                self._on_poll_done()

        task.add_done_callback(release)
        return task

    def in_flight(self) -> set[asyncio.Task[Any]]:
        return self._tasks["submits"] | self._tasks["work"]

    def cancel_later(self) -> None:
        """Later delivery attempts are dropped on stop: the next start resumes those jobs."""
        for task in self._tasks["later"]:
            task.cancel()

    # -- jobs --------------------------------------------------------------------------------------

    @property
    def polls_in_flight(self) -> int:
        return sum(self._polling.values())

    def acknowledging(self, job_id: int) -> None:
        """Held while the requester is acknowledged; `launch` or `abandon` follows. The deadline keeps a
        job nobody launched from being held for ever: its lease then runs out."""
        self._acknowledging[job_id] = time.monotonic() + ACKNOWLEDGE_HOLD

    def acknowledged(self, job_id: int) -> None:
        self._acknowledging.pop(job_id, None)

    def begin_delivery(self, job_id: int) -> bool:
        """False if this process is delivering the job already."""
        if job_id in self._delivering:
            return False
        self._delivering.add(job_id)
        return True

    def end_delivery(self, job_id: int) -> None:
        self._delivering.discard(job_id)

    def holds(self, job_id: int) -> bool:
        """Whether the job is in this process's hands (a late renewal must not make it look orphaned)."""
        return job_id in self._working or job_id in self._acknowledging or job_id in self._polling

    def held(self) -> tuple[list[int], list[int]]:
        """(every job held, the jobs whose poll is out) for a lease renewal; drops expired holds."""
        deadline = time.monotonic()
        for job_id, until in list(self._acknowledging.items()):
            if until < deadline:
                del self._acknowledging[job_id]
        # A poll may end its job and tell the requester before it returns: that work is held too.
        every = sorted({*self._working, *self._acknowledging, *self._polling})
        return every, sorted(self._polling)


def _reap(task: asyncio.Task[Any]) -> None:
    """Every background task's end is looked at: none may die with an exception nobody retrieves."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("background task %s failed: %s", task.get_name(), error, exc_info=error)
