"""One of several bot processes in the cross-process quota race: it opens the shared PostgreSQL
store with a pool of its own, waits for the common start time, then sends its share of one member's
simultaneous admissions and prints how many were allowed.

    python -m tests.quota_race_child URL START_EPOCH COUNT [TASKS UNITS_PER_TASK]

Each admission asks for TASKS tasks of UNITS_PER_TASK units (default 1 and 1)."""

from __future__ import annotations

import asyncio
import sys
import time

from bot.adapters.store import Store
from bot.core.models import ImageRequest, Origin
from bot.core.policy.quotas import Member

GUILD, USER = 100, 1
NOW = 1_800_000_000.0


async def main(url: str, start: float, count: int, tasks: int = 1, units: int = 1) -> int:
    store = await Store.open_url(url, pool_size=4)
    try:
        await asyncio.sleep(max(0.0, start - time.time()))  # every process admits at one agreed moment
        origin = Origin(source="discord", guild_id=GUILD, channel_id=5, user_id=USER)
        results = await asyncio.gather(
            *(
                store.usage.admit(
                    Member(GUILD, USER),
                    ImageRequest("a cat"),
                    origin,
                    NOW,
                    3,
                    count=tasks,
                    units_per_task=units,
                )
                for _ in range(count)
            )
        )
    finally:
        await store.close()
    return sum(1 for decision, _ in results if decision.allowed)


if __name__ == "__main__":
    url, start, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    tasks, units = (int(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) > 5 else (1, 1)
    print(asyncio.run(main(url, start, count, tasks, units)))
