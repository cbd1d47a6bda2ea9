"""Requests of several images for the tests: written through the store as admission writes them (N jobs
sharing request_id, at request_index 1..N, request_size N) and launched through the runner."""

from __future__ import annotations

import time
from typing import Any

from bot.adapters.store import Store
from bot.adapters.store.interface import Session
from bot.core.models import GUILD, ImageRequest, Job, Origin
from bot.core.runner import JobRunner
from testing.fake_discord import FakeDiscord


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
