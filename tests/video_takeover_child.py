"""A child process for the video take-over test: a runner on PostgreSQL that starts one video job and
then waits, to be killed (SIGKILL) while the job runs.

    python -m tests.video_takeover_child PG_URL SANDBOX_URL

It prints `enqueued` once the job is written; the parent kills it when the job is running."""

from __future__ import annotations

import asyncio
import sys

from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.models import ImageRequest, Origin
from bot.ops.runner_wiring import build_runner
from tests.helpers import FAST_RUNNER, FAST_SCHEDULE, RecordingSink

LEASE = 2.0
SOURCE = "test"
VIDEO = ImageRequest(
    "waves at night", aspect_ratio="16:9", media="video", video_seconds=6, video_resolution="480P"
)


async def main(pg_url: str, base_url: str) -> None:
    store = await Store.open_url(pg_url, pool_size=2, lease=LEASE)
    async with open_session(FetchPolicy.build(base_url)) as session:
        api = ImageApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=5.0)
        runner = build_runner(
            store, api, session, RecordingSink(), FAST_RUNNER, schedule=FAST_SCHEDULE, source=SOURCE
        )
        await runner.start()
        await runner.enqueue(VIDEO, Origin(source=SOURCE))
        print("enqueued", flush=True)
        await asyncio.sleep(600)  # killed long before this


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
