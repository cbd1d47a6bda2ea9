"""Run the real bot class against the fake Discord and the sandbox API, on a temporary database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.core.clock import Clock
from bot.core.models import Job
from bot.core.runner import RunnerConfig
from bot.discord.client import ImagineBot
from bot.ops.config import Secret, Settings
from sandbox.server import Sandbox
from testing.fake_discord import FakeDiscord, RecordedRequest, run_client
from tests.helpers import FAST_RUNNER

EPHEMERAL = 64


class ShiftedClock:
    """Real time plus an offset a test can move forward, e.g. past midnight, without sleeping."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset

    def real_seconds(self, seconds: float) -> float:
        return seconds


@dataclass
class World:
    fake: FakeDiscord
    sandbox: Sandbox
    db_path: Path

    def settings(self, **overrides: Any) -> Settings:
        base = Settings(
            discord_token=Secret(self.fake.token),
            api_key=Secret("sandbox-key"),
            base_url=self.sandbox.base_url or "",
            database_path=self.db_path,
            dev_guild_id=self.fake.guild_id,
            poll_min_interval=0.05,
            poll_max_interval=0.5,
            poll_first_delay=0.1,
            request_timeout=5.0,
            # The fake Discord's CDN plays Discord's public CDN (reposts fetch images from it).
            result_hosts=(f"127.0.0.1:{self.fake.port}",),
        )
        return replace(base, **overrides)

    @contextlib.asynccontextmanager
    async def bot(
        self, runner_config: RunnerConfig = FAST_RUNNER, clock: Clock | None = None, **overrides: Any
    ) -> AsyncIterator[ImagineBot]:
        """The real bot on this world; `overrides` are settings (e.g. `shard_count=2, shard_ids=(1,)`)."""
        bot = ImagineBot(
            self.settings(**overrides),
            runner_config=runner_config,
            clock=clock,
            guild_ready_timeout=0.05,
            identify_interval=0.0,  # the fake has no IDENTIFY rate limit: a bot's shards connect at once
        )
        async with run_client(self.fake, bot):
            await bot.wait_until_ready()
            yield bot

    def submits(self) -> list[Any]:
        return [r for r in self.sandbox.requests if r.method == "POST" and r.path == "/xai/images"]

    def bot_posts(self, channel_id: int | None = None) -> list[RecordedRequest]:
        """Messages the bot created in a channel through the bot token (not the interaction)."""
        channel = channel_id or self.fake.channel_id
        return [
            r for r in self.fake.requests if r.method == "POST" and r.path == f"/channels/{channel}/messages"
        ]


async def wait_for_job(
    bot: ImagineBot, predicate: Callable[[Job], bool], job_id: int = 1, timeout: float = 10.0
) -> Job:
    """Poll the bot's own store until the job row satisfies `predicate` (the database is the truth)."""
    async with asyncio.timeout(timeout):
        while True:
            job = await bot.store.jobs.get(job_id)
            if job is not None and predicate(job):
                return job
            await asyncio.sleep(0.02)
