"""Deliveries run apart from the poll slots: a result host that trickles a byte a second holds up only
its own job, which ends at its delivery deadline with a plain reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.core.delivery_pool import MSG_TOO_SLOW
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
