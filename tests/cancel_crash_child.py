"""A child process for the cancel crash test: it admits and starts a job, then cancels it through the
JobRunner and dies (`os._exit`) right after the N-th database statement of the cancel.

    python -m tests.cancel_crash_child DB N

Exit 0: the cancel finished (it has fewer than N statements); CRASHED: the process was killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from bot.adapters.image_api import ImageApi
from bot.adapters.store import Store
from bot.adapters.store import sqlite_backend as base
from bot.core.models import ImageRequest
from bot.ops.runner_wiring import build_runner
from tests.helpers import RecordingSink
from tests.store_crash_child import MEMBER, NOW, ORIGIN, USER, _crash_after


async def main(path: Path, crash_at: int) -> None:
    store = await Store.open(path)
    async with aiohttp.ClientSession() as session:
        # Never asked: a cancel does not reach the image service (it has no cancel route).
        api = ImageApi(session, "http://127.0.0.1:9", "key", "grok-imagine-image")
        runner = build_runner(store, api, session, RecordingSink(), source="discord")
        decision, jobs = await runner.admit(ImageRequest("a cat"), ORIGIN, MEMBER, 3)
        job = jobs[0] if jobs else None
        assert decision.allowed and job is not None, decision
        # Admitted and running (the submit's store writes made by hand: no image service here).
        assert await store.jobs.mark_submitting(job.id)
        assert await store.jobs.mark_running(job.id, "task-1", NOW + 1, NOW + 2)
        running = await store.jobs.get(job.id)
        assert running is not None
        base.after_statement = _crash_after(crash_at)
        await runner.cancel(running, by_user=USER)
        base.after_statement = None
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
