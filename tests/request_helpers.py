"""Requests of several images for the tests: written through the store as admission writes them (N jobs
sharing request_id, at request_index 1..N, request_size N) and launched through the runner."""

from __future__ import annotations

import time
from typing import Any

from bot.adapters.store import Store
from bot.adapters.store.interface import Session
from bot.core.models import GUILD, ImageRequest, Job, Origin
from bot.core.runner import JobRunner
from sandbox.server import Sandbox
from testing.fake_discord import FakeDiscord
from tests.bot_harness import wait_for_job


def _as_request(s: Session, ids: list[int]) -> None:
    with s.write() as tx:
        for index, job_id in enumerate(ids, start=1):
            tx.update(
                "jobs", job_id, {"request_id": ids[0], "request_index": index, "request_size": len(ids)}
            )


async def write_request(store: Store, request: ImageRequest, origin: Origin, count: int) -> list[Job]:
    """`count` queued jobs of one request, in its order."""
    now = time.time()
    jobs = [await store.jobs.create(request, origin, now) for _ in range(count)]
    await store.jobs._backend.run(_as_request, [job.id for job in jobs])
    return await store.jobs.of_request(jobs[0].id)


def channel_origin(fake: FakeDiscord, **more: Any) -> Origin:
    """A request in the fake's channel, by its member, with no interaction (delivered as a post)."""
    fields: dict[str, Any] = {
        "source": "discord",
        "guild_id": fake.guild_id,
        "channel_id": fake.channel_id,
        "user_id": fake.user_id,
        "context": GUILD,
        "locale": "en-US",
        "guild_locale": "en-US",
    }
    return Origin(**(fields | more))


async def launch_request(
    runner: JobRunner, store: Store, request: ImageRequest, origin: Origin, count: int
) -> list[Job]:
    jobs = await write_request(store, request, origin, count)
    await runner.launch(jobs, origin.message_id)
    return jobs


def finish_task(sandbox: Sandbox, task_id: str, status: str = "completed", error: str | None = None) -> None:
    """End a sandbox task now, as `status` (forced outcomes follow the order submits arrive in, which
    concurrent submits do not keep: a test that needs image N to end so ends its task by its id)."""
    task = sandbox.tasks[task_id]
    task.final_status = status  # type: ignore[assignment]
    task.duration = sandbox.config.clock() - task.created_clock
    if error is not None:
        task.error_message, task.error_code = error, 500


async def running_tasks(bot: Any, jobs: list[Job]) -> list[str]:
    """The task id of each job, once each was sent."""
    return [
        (await wait_for_job(bot, lambda j: j.task_id is not None, job.id, timeout=30)).task_id or ""
        for job in jobs
    ]
