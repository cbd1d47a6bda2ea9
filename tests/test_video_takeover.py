"""A process killed (SIGKILL) while it follows a video: another process on the same PostgreSQL takes the
job over when the lease runs out, follows the task it never sent (not sent again) and delivers the
MP4 once."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import FetchPolicy, open_session
from bot.adapters.store import Store
from bot.core.models import JobStatus
from bot.ops.runner_wiring import build_runner
from sandbox.server import Sandbox, SandboxConfig
from testing.mp4_boxes import read_mp4
from tests.helpers import FAST_RUNNER, FAST_SCHEDULE, RecordingSink, wait_until
from tests.video_takeover_child import LEASE, SOURCE

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(90)
async def test_a_video_of_a_killed_process_is_taken_over_and_delivered_once(pg_url: str) -> None:
    sandbox = Sandbox(SandboxConfig(duration=4.0, seed=5))
    base_url = await sandbox.start()
    store = await Store.open_url(pg_url, pool_size=2, lease=LEASE)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.video_takeover_child",
        pg_url,
        base_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert (await asyncio.wait_for(child.stdout.readline(), 30)).strip() == b"enqueued"

        async def running() -> bool:
            job = await store.jobs.get(1)
            return job is not None and job.status is JobStatus.RUNNING and job.task_id is not None

        await wait_until(running, "the child to follow its video task", timeout=20)
        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
        sink = RecordingSink()
        async with open_session(FetchPolicy.build(base_url)) as session:
            api = ImageApi(session, base_url, "sandbox-key", "grok-imagine-image", timeout=5.0)
            runner = build_runner(
                store, api, session, sink, FAST_RUNNER, schedule=FAST_SCHEDULE, source=SOURCE
            )
            await runner.start()
            try:
                [outcome] = await sink.wait_for(1, timeout=LEASE * 4 + 10)

                async def recorded() -> bool:
                    job = await store.jobs.get(1)
                    return job is not None and job.status is JobStatus.DELIVERED

                await wait_until(recorded, "the delivery to be recorded", timeout=10)
            finally:
                await runner.stop()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await store.close()
        await sandbox.stop()
    assert outcome.job.media == "video"
    [video] = outcome.images
    assert video.content_type == "video/mp4" and video.data is not None
    facts = read_mp4(video.data)
    assert abs(facts.duration - 6) < 0.5 and facts.width > facts.height
    submits = [r for r in sandbox.requests if r.method == "POST"]
    assert [r.path for r in submits] == ["/xai/videos"]  # followed, never sent again
