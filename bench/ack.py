"""How fast /imagine is acknowledged: bursts of simultaneous invocations through the real ImagineBot,
against the fake Discord (gateway + REST on 127.0.0.1) and the in-process sandbox API.

The figure is the fake's own clock twice: from just before it sent INTERACTION_CREATE
(FakeInteraction.sent_at) to the arrival of the bot's callback (RecordedRequest.received_at). The fake
and the sandbox run in the same process as the bot, so their CPU counts against the bot: a real
deployment can only be faster.

The bot's set-up (`bench_bot`) and the burst loop (`run_bursts`) serve `bench.request_count` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.profiles import Profile
from bench.stats import percentile

if TYPE_CHECKING:
    from bot.discord.client import ImagineBot
    from sandbox.server import Sandbox
    from testing.fake_discord import FakeDiscord

DEFERRED = 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE


@dataclass(frozen=True)
class AckResult:
    samples_ms: list[float]
    not_deferred: int
    """Callbacks that were not a deferral (a refusal would be fast but is not what is measured)."""

    def figures(self) -> dict[str, float | None]:
        return {
            "ack_p50_ms": percentile(self.samples_ms, 50),
            "ack_p99_ms": percentile(self.samples_ms, 99),
            "ack_max_ms": max(self.samples_ms),
            "ack_samples": float(len(self.samples_ms)),
            "ack_not_deferred": float(self.not_deferred),
        }


@dataclass(frozen=True)
class Ack:
    """One invocation's acknowledgement: how long it took on the fake's clock, and whether it deferred."""

    ms: float
    deferred: bool


@dataclass(frozen=True)
class BenchBot:
    fake: FakeDiscord
    bot: ImagineBot
    members: list[int]


@contextlib.asynccontextmanager
async def bench_bot(sandbox: Sandbox, members: int, db_name: str, **settings: Any) -> AsyncIterator[BenchBot]:
    """The real ImagineBot against a fresh fake Discord and `sandbox`, ready, with `members` members in
    its server (one per invocation: quotas limit what one member may run at once, and a burst of 50 is
    50 people in a busy server, not one person pressing 50 times)."""
    # Imported here: discord.py is heavy and only the scenarios that start a bot need it.
    from bot.discord.client import ImagineBot
    from bot.ops.config import Secret, Settings
    from testing.fake_discord import run_client, running_fake

    with tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
        async with running_fake() as fake:
            users = [fake.add_user(f"member-{i}") for i in range(members)]
            for user_id in users:
                fake.add_member(fake.guild_id, user_id)
            config = Settings(
                discord_token=Secret(fake.token),
                api_key=Secret(sandbox.config.api_key),
                base_url=sandbox.base_url or "",
                database_path=Path(tmp) / db_name,
                dev_guild_id=fake.guild_id,
                log_level="WARNING",
                **settings,
            )
            bot = ImagineBot(config, guild_ready_timeout=0.05)
            async with run_client(fake, bot):
                await bot.wait_until_ready()
                yield BenchBot(fake, bot, users)


async def run_bursts(
    fake: FakeDiscord,
    users: list[int],
    burst: int,
    rounds: int,
    options: Callable[[int, int], dict[str, Any]],
    settle: Callable[[], Awaitable[None]],
) -> list[list[Ack]]:
    """`rounds` bursts of `burst` simultaneous /imagine invocations, each by its own member of `users`;
    `options(round, i)` are invocation i's options. After each burst, `settle()`: each burst starts
    from a quiet bot (back to back, a burst would also wait for the previous one's status edits, and
    that is a different experiment). Each burst's acknowledgements, in the order invoked."""
    acks: list[list[Ack]] = []
    for round_no in range(rounds):
        members = users[round_no * burst :][:burst]
        asked = [options(round_no, i) for i in range(len(members))]
        inters = await asyncio.gather(
            *(fake.invoke_slash("imagine", o, user_id=u) for o, u in zip(asked, members, strict=True))
        )
        callbacks = await asyncio.gather(*(fake.wait_for_callback(inter, timeout=15.0) for inter in inters))
        acks.append(
            [
                Ack(
                    (callback.received_at - inter.sent_at) * 1000.0,
                    (callback.json or {}).get("type") == DEFERRED,
                )
                for inter, callback in zip(inters, callbacks, strict=True)
            ]
        )
        await settle()
    return acks


async def warm_up(fake: FakeDiscord, user_id: int) -> None:
    """The first invocation pays for lazy imports and new connections: made before any is timed."""
    warm = await fake.invoke_slash("imagine", {"prompt": "warm-up"}, user_id=user_id)
    await fake.wait_for_callback(warm, timeout=10.0)


async def run_ack(profile: Profile) -> AckResult:
    from sandbox.server import Sandbox, SandboxConfig, log_uniform

    # Jobs take 5-90 s, so none finishes while the acknowledgements are measured; the runner still
    # submits every job, which is load the bot has in production right after an acknowledgement.
    sandbox = Sandbox(SandboxConfig(duration_sampler=log_uniform(5, 90), seed=profile.seed))
    await sandbox.start()
    try:
        members = 1 + profile.ack_burst * profile.ack_rounds
        async with bench_bot(sandbox, members, "ack.db") as run:
            fake = run.fake
            await warm_up(fake, run.members[0])
            await quiet(fake)
            acks = await run_bursts(
                fake,
                run.members[1:],
                profile.ack_burst,
                profile.ack_rounds,
                lambda round_no, i: {"prompt": f"burst {round_no} #{i}"},
                lambda: quiet(fake),
            )
    finally:
        await sandbox.stop()
    every = [ack for burst in acks for ack in burst]
    return AckResult([ack.ms for ack in every], sum(1 for ack in every if not ack.deferred))


async def quiet(fake: FakeDiscord, idle: float = 0.3, timeout: float = 15.0) -> None:
    """Wait (bounded) until the fake has received no request for `idle` seconds: the bot has
    submitted the burst's jobs and edited their status messages."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen, since = len(fake.requests), loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        if len(fake.requests) != seen:
            seen, since = len(fake.requests), loop.time()
        elif loop.time() - since >= idle:
            return
