"""A process that is behind on its database calls still renews its leases and takes over a dead
process's work at once: on PostgreSQL the lease loop's calls have a thread and a connection of their
own, so they do not queue behind the ordinary calls (at 10,000 tasks in flight a dead process's jobs
waited there for over a minute). Real PostgreSQL; the ordinary calls are held up with pg_sleep."""

from __future__ import annotations

import asyncio
import time

from bot.adapters.store import Store
from bot.adapters.store.interface import Session

POOL = 2  # ordinary threads (and connections)
SLOW = 1.0  # seconds each ordinary call sleeps in the database
QUEUED = 3 * POOL  # ordinary calls queued at once: SLOW * QUEUED / POOL = 3 s of queue


def slow_call(s: Session) -> None:
    s.row("SELECT pg_sleep(:seconds)", {"seconds": SLOW})


async def test_lease_calls_do_not_wait_behind_a_queue_of_ordinary_calls(pg_url: str) -> None:
    store = await Store.open_url(pg_url, pool_size=POOL)
    try:
        backend = store._backend
        queue = [asyncio.ensure_future(backend.run(slow_call)) for _ in range(QUEUED)]
        await asyncio.sleep(0.2)  # the first ordinary calls are in the database, the rest wait
        started = time.monotonic()
        await store.jobs.renew_leases([], [], time.time(), 10.0)
        assert await store.jobs.take_over("discord", time.time(), 10.0, 100) == []
        lease_calls = time.monotonic() - started
        # The same call on the ordinary lane waits for the queue ahead of it: the measure can fail.
        started = time.monotonic()
        await backend.run(lambda s: s.row("SELECT 1"))
        ordinary = time.monotonic() - started
        await asyncio.gather(*queue)
    finally:
        await store.close()
    assert lease_calls < SLOW / 2, f"lease calls took {lease_calls:.2f} s behind the queue"
    assert ordinary > SLOW * 2, f"an ordinary call took {ordinary:.2f} s: the queue was not there"
