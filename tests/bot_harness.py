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
from tests.helpers import FAST_RUNNER, runner_idle, runner_settled, wait_until

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

    async def settle(self, *bots: ImagineBot, timeout: float = 10.0) -> None:
        """Wait until nothing more is under way between these bots and Discord (see `settle`)."""
        await settle(self.fake, *bots, timeout=timeout)

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
    seen: list[Job | None] = [None]

    async def satisfied() -> Job | None:
        seen[0] = job = await bot.store.get_job(job_id)
        return job if job is not None and predicate(job) else None

    def last_seen() -> str:
        job = seen[0]
        if job is None:
            return f"job {job_id} to be written"
        last = f"{job.status.value}, delivered_at {job.delivered_at}"
        return f"job {job_id} to reach the awaited state (last seen: {last})"

    return await wait_until(satisfied, last_seen, timeout)


# Tasks in which discord.py runs the bot's code for a gateway event: event listeners, slash commands
# (and their error handlers), buttons, menus and dialogs.
HANDLER_TASKS = ("discord.py: ", "CommandTree-invoker", "discord-ui-")


def handlers_running() -> list[str]:
    return sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(HANDLER_TASKS))


async def settle(fake: FakeDiscord, *bots: ImagineBot, timeout: float = 10.0) -> None:
    """A definite "nothing more will happen", for the checks that something did NOT happen: at one
    moment, every bot's handlers have returned, its runner has made a whole pass of its poll loop with
    nothing under way (so no job the store calls due is left), the clients have processed every
    gateway event and the fake Discord has no request in flight. Within `timeout`, or fail saying
    what was still busy."""
    busy: list[str] = []

    async def quiet() -> bool:
        await fake.wait_idle(timeout)
        await wait_until(lambda: not handlers_running(), lambda: f"{handlers_running()} to return", timeout)
        for bot in bots:
            await runner_settled(bot.runner, timeout)
        # No await from here on: on this one event loop, these hold at the same moment.
        busy[:] = handlers_running()
        busy.extend(f"runner of {bot.user}" for bot in bots if not runner_idle(bot.runner))
        if fake.in_flight:
            busy.append(f"{fake.in_flight} request(s) to the fake Discord")
        return not busy

    await wait_until(quiet, lambda: f"the bot(s) to settle (still busy: {', '.join(busy)})", timeout)
