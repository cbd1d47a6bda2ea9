"""Wiring the job runner to its adapters: the image API client, result downloads and the store."""

from __future__ import annotations

import aiohttp

from bot.adapters.image_api import ImageApi
from bot.adapters.image_service import ApiImageService
from bot.adapters.result_files import HttpResultFetcher
from bot.core.clock import Clock
from bot.core.runner import JobRunner, JobSink, RunnerConfig
from bot.core.runner.ports import JobStore
from bot.core.schedule import PollSchedule


def build_runner(
    store: JobStore,
    api: ImageApi,
    session: aiohttp.ClientSession,
    sink: JobSink,
    config: RunnerConfig | None = None,
    *,
    schedule: PollSchedule | None = None,
    source: str = "discord",
    clock: Clock | None = None,
) -> JobRunner:
    """A JobRunner speaking to `api`, downloading results through `session`; its leases last `store.lease`."""
    config = config or RunnerConfig()
    fetcher = HttpResultFetcher(
        session,
        max_bytes=config.max_result_bytes,
        timeout=config.download_timeout,
        max_pixels=config.max_result_pixels,
    )
    return JobRunner(
        store, ApiImageService(api), fetcher, sink, config, schedule=schedule, source=source, clock=clock
    )
