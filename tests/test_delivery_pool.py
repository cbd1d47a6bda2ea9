"""Deliveries run apart from the poll slots: a result host that trickles a byte a second holds up only
its own job, which ends at its delivery deadline with a plain reason."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from bot.core.delivery_pool import MSG_TOO_SLOW, DeliveryPool
from bot.core.models import ImageRequest, Origin
from sandbox.server import Sandbox
from tests.helpers import FAST_RUNNER, ImageHost, RecordingSink, running_runner, wait_until

ORIGIN = Origin(source="test", guild_id=1, channel_id=2, user_id=3)


async def test_a_trickling_result_host_delays_only_its_own_job(sandbox: Sandbox, db_path: Path) -> None:
    # One poll slot: with downloads inside the poll slots, the slow download would hold it, and no
    # other job would even be polled until it ended.
    config = replace(FAST_RUNNER, concurrency=1, delivery_deadline=6.0, download_timeout=6.0)
    sink = RecordingSink()
    async with ImageHost() as slow:
        sandbox.force_next("completed", result={"images": [slow.url("/trickle")]}, duration=0.0)
        async with running_runner(
            db_path, sandbox.base_url or "", sink, config=config, result_hosts=(slow.origin,)
        ) as runner:
            slow_job = await runner.enqueue(ImageRequest("from a slow host"), ORIGIN)
            await wait_until(lambda: slow.hits, "the slow job's download to begin", timeout=5)
            quick = [await runner.enqueue(ImageRequest(f"quick {i}"), ORIGIN) for i in range(3)]
            first = await sink.wait_for(3, timeout=5.9)
            assert {o.job.id for o in first} == {job.id for job in quick}
            assert all(o.images and o.images[0].data for o in first)
            outcomes = await sink.wait_for(4, timeout=10)
    last = outcomes[3]
    assert last.job.id == slow_job.id
    assert last.images is not None and last.images[0].data is None
    assert last.images[0].error == MSG_TOO_SLOW
    assert last.images[0].url == slow.url("/trickle")  # a public link is still offered


async def test_eight_trickling_jobs_leave_slots_for_a_job_from_another_host(
    sandbox: Sandbox, db_path: Path
) -> None:
    # Eight delivery slots (the default) and eight jobs whose host sends a byte a second: they may
    # hold half the slots, so the job whose image is on another host is delivered while they trickle.
    config = replace(FAST_RUNNER, delivery_concurrency=8, delivery_deadline=60.0, download_timeout=60.0)
    sink = RecordingSink()
    async with ImageHost() as slow, ImageHost() as fast:
        for n in range(8):
            sandbox.force_next("completed", result={"images": [slow.url(f"/trickle?job={n}")]}, duration=0.0)
        async with running_runner(
            db_path,
            sandbox.base_url or "",
            sink,
            config=config,
            result_hosts=(slow.origin, fast.origin),
        ) as runner:
            pool = runner.deliverer.pool
            assert pool.host_share == 4
            slow_jobs = [await runner.enqueue(ImageRequest(f"slow {n}"), ORIGIN) for n in range(8)]
            await wait_until(
                lambda: len(slow.hits) == pool.host_share and pool.waiting == 8 - pool.host_share,
                lambda: (
                    f"the slow host's share downloading, the rest waiting ({len(slow.hits)}, {pool.waiting})"
                ),
            )
            sandbox.force_next("completed", result={"images": [fast.url("/img.png")]}, duration=0.0)
            quick = await runner.enqueue(ImageRequest("from a fast host"), ORIGIN)
            [first] = await sink.wait_for(1, timeout=10)
            still_downloading = (len(slow.hits), pool.waiting)
    assert first.job.id == quick.id and first.images and first.images[0].data
    assert not any(o.job.id in {j.id for j in slow_jobs} for o in sink.outcomes[:1])
    # The slow host's jobs were all still at it: four trickling, four waiting for its share.
    assert still_downloading == (4, 4)


async def test_a_host_waiting_for_its_share_does_not_hold_up_others() -> None:
    pool = DeliveryPool(size=3, deadline=5.0, host_share=1)
    started: list[str] = []
    release = asyncio.Event()

    async def job(name: str) -> None:
        started.append(name)
        await release.wait()

    slow = [
        asyncio.create_task(pool.run(lambda n=n: job(f"a{n}"), [f"https://a.example/{n}.png"]))  # type: ignore[misc]
        for n in range(3)
    ]
    other = asyncio.create_task(pool.run(lambda: job("b"), ["https://b.example/1.png"]))
    inline = asyncio.create_task(pool.run(lambda: job("inline"), ["data:image/png;base64,AAAA"]))
    await wait_until(lambda: len(started) >= 3, "three jobs to start", timeout=5, interval=0)
    assert started == ["a0", "b", "inline"] and pool.waiting == 2
    slow[1].cancel()  # a waiting job that is cancelled leaves the queue
    release.set()
    async with asyncio.timeout(5):
        await asyncio.gather(slow[0], slow[2], other, inline)
    assert started == ["a0", "b", "inline", "a2"]
    assert (pool.in_use, pool.waiting) == (0, 0)
