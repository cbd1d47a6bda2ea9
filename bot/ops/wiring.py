"""The running parts built from the settings: the image API client, the poll schedule, the fetch policy
and the job runner's configuration, for the bot and the terminal alike.

Configuration (`bot/ops/config.py`) only describes values; this module knows what they configure.
The store is opened once per process by the entry point (`bot.ops.preflight.open_database` for the
bot) and handed on."""

from __future__ import annotations

from dataclasses import replace

import aiohttp

from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import FetchPolicy
from bot.core.runner import RunnerConfig
from bot.core.schedule import PollSchedule
from bot.ops.config import Settings

# A member whose outcome could not be posted (Discord down, channel and DMs closed) gets a few more
# tries over the next 20 minutes before the job is marked undeliverable.
REDELIVER_DELAYS = (60.0, 300.0, 900.0)


def image_api(settings: Settings, session: aiohttp.ClientSession) -> ImageApi:
    """The image API client the settings describe, on the process's one session."""
    return ImageApi(
        session,
        settings.base_url,
        settings.api_key.reveal(),
        settings.model,
        timeout=settings.request_timeout,
        max_answer_bytes=settings.max_answer_bytes,
    )


def fetch_policy(settings: Settings) -> FetchPolicy:
    """The image API's origin and RESULT_HOSTS may be fetched from; everything else must be public."""
    return FetchPolicy.build(settings.base_url, settings.result_hosts)


def poll_schedule(settings: Settings) -> PollSchedule:
    return PollSchedule(
        min_interval=settings.poll_min_interval,
        max_interval=settings.poll_max_interval,
        first_poll=settings.poll_first_delay,
        poll_budget=settings.poll_budget,
    )


def runner_config(settings: Settings) -> RunnerConfig:
    """The bot's job runner: every knob the settings have, and later delivery attempts."""
    return RunnerConfig(
        time_limit=settings.job_time_limit,
        concurrency=settings.poll_concurrency,
        outage_queue_limit=settings.outage_queue_limit,
        max_result_bytes=settings.max_result_bytes,
        status_update_interval=settings.status_update_interval,
        delivery_concurrency=settings.delivery_concurrency,
        delivery_deadline=settings.delivery_timeout,
        max_result_pixels=settings.max_result_pixels,
        redeliver_delays=REDELIVER_DELAYS,
    )


def terminal_runner_config(settings: Settings) -> RunnerConfig:
    """`python -m bot imagine`: every progress step shown at once, and no later delivery attempts (the
    file sink reports its own failure and the command ends)."""
    return replace(runner_config(settings), status_update_interval=0, redeliver_delays=())
