"""Job runners of two processes on one PostgreSQL (two runners, each with its own store, pool and HTTP
session, in this test process): a process keeps the jobs it is slow with, and takes over the jobs of
one that died while it runs, not only when it starts."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator

from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.image_file import ImageFile
from bot.core.models import ImageRequest, Job, JobStatus, Origin
from bot.core.runner import DeliveryReceipt, JobRunner
from bot.ops.runner_wiring import build_runner
from sandbox.server import Sandbox
from tests.helpers import FAST_RUNNER, FAST_SCHEDULE, RecordingSink, runner_settled, wait_until

LEASE = 2.0
CONFIG = FAST_RUNNER  # the lease is the store's (Store.open_url(lease=LEASE))


class SlowSink(RecordingSink):
    """Posting takes longer than a lease, as a slow Discord upload may."""

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        await asyncio.sleep(LEASE * 1.75)  # the slowness under test: the upload outlasts a lease
        return await super().deliver(job, images, elapsed)


@contextlib.asynccontextmanager
async def process(pg_url: str, sandbox: Sandbox, sink: RecordingSink) -> AsyncIterator[JobRunner]:
    base_url = sandbox.base_url or ""
    async with open_session(FetchPolicy.build(base_url)) as session:
        store = await Store.open_url(pg_url, pool_size=4, lease=LEASE)
        api = ImageApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=5.0)
        runner = build_runner(store, api, session, sink, CONFIG, schedule=FAST_SCHEDULE, source="test")
        try:
            await runner.start()
            yield runner
        finally:
            await runner.stop()
            await store.close()


def submits(sandbox: Sandbox) -> collections.Counter[str]:
    return collections.Counter(
        r.json["prompt"] for r in sandbox.requests if r.method == "POST" and r.path == "/xai/images"
    )


async def all_recorded(store: Store, ids: list[int]) -> bool:
    rows = [await store.jobs.get(job_id) for job_id in ids]
    return all(row is not None and row.delivered_at is not None for row in rows)


async def test_a_slow_delivery_keeps_its_job_and_nobody_posts_it_twice(sandbox: Sandbox, pg_url: str) -> None:
    slow, other = SlowSink(), RecordingSink()
    async with process(pg_url, sandbox, slow) as first, process(pg_url, sandbox, other) as second:
        job = await first.enqueue(ImageRequest("a slow upload"), Origin(source="test"))
        [outcome] = await slow.wait_for(1, timeout=15)
        await runner_settled(first)  # the delivery is recorded
        final = await first.store.jobs.get(job.id)
        assert await second.renew_and_take_over() == 0  # another round of the other's lease loop
        await runner_settled(second)  # a delivery it had taken over would be under way or done by now
    assert outcome.images and other.outcomes == []  # the other process never took it over
    assert final is not None and final.status is JobStatus.DELIVERED
    assert submits(sandbox) == {"a slow upload": 1}


async def test_a_dead_process_s_queued_and_finished_jobs_are_taken_over_while_running(
    sandbox: Sandbox, pg_url: str
) -> None:
    sink = RecordingSink()
    dead = await Store.open_url(pg_url, pool_size=2, lease=LEASE)
    try:
        async with process(pg_url, sandbox, sink) as live:
            task_id = await live.parts.service.submit("made", None, ())  # what the dead process had sent
            # Written by a process that dies at once: one never sent, one finished but not posted.
            started = time.monotonic()
            queued = await dead.jobs.create(ImageRequest("never sent"), Origin(source="test"), time.time())
            finished = await dead.jobs.create(ImageRequest("made"), Origin(source="test"), time.time())
            assert await dead.jobs.mark_running(finished.id, task_id, time.time(), time.time())
            url = sandbox.image_url(sandbox.base_url or "", task_id)
            assert await dead.jobs.mark_completed(finished.id, [url], time.time(), None)
            outcomes = await sink.wait_for(2, timeout=LEASE * 4)
            took = time.monotonic() - started
            await wait_until(  # the delivery is recorded just after the sink returns
                lambda: all_recorded(live.store, [queued.id, finished.id]),
                "both deliveries to be recorded",
                timeout=5,
            )
    finally:
        await dead.close()
    # Within the lease and one round of the lease loop (plus slack), not at the next start-up.
    assert LEASE <= took <= LEASE * 1.25 + 1.5
    assert sorted(o.job.id for o in outcomes) == [queued.id, finished.id]
    assert all(o.images and o.images[0].data for o in outcomes)
    # The queued one sent once; the finished one not sent again.
    assert submits(sandbox) == {"never sent": 1, "made": 1}
