"""One of several bot processes in the cross-process quota race: it opens the shared PostgreSQL
store with a pool of its own, waits for the common start time, then sends its share of one member's
simultaneous admissions and prints how many were allowed.

    python -m tests.quota_race_child URL START_EPOCH COUNT"""

from __future__ import annotations

import asyncio
import sys
import time

from bot.adapters.store import Store
from bot.core.models import ImageRequest, Origin
from bot.core.policy.quotas import Member

GUILD, USER = 100, 1
NOW = 1_800_000_000.0


async def main(url: str, start: float, count: int) -> int:
    store = await Store.open_url(url, pool_size=4)
    try:
        await asyncio.sleep(max(0.0, start - time.time()))  # every process admits at one agreed moment
        origin = Origin(source="discord", guild_id=GUILD, channel_id=5, user_id=USER)
        results = await asyncio.gather(
            *(store.admit(Member(GUILD, USER), ImageRequest("a cat"), origin, NOW, 3) for _ in range(count))
        )
    finally:
        await store.close()
    return sum(1 for decision, _ in results if decision.allowed)


if __name__ == "__main__":
    url, start, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    print(asyncio.run(main(url, start, count)))
