"""How fast /imagine is acknowledged: bursts of simultaneous invocations through the real ImagineBot,
against the fake Discord (gateway + REST on 127.0.0.1) and the in-process sandbox API.

The figure is the fake's own clock twice: from just before it sent INTERACTION_CREATE
(FakeInteraction.sent_at) to the arrival of the bot's callback (RecordedRequest.received_at). The fake
and the sandbox run in the same process as the bot, so their CPU counts against the bot: a real
deployment can only be faster.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.profiles import Profile
from bench.stats import percentile

if TYPE_CHECKING:
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


async def run_ack(profile: Profile) -> AckResult:
    # Imported here: discord.py is heavy and only this scenario needs it.
    from bot.discord.client import ImagineBot
    from bot.ops.config import Secret, Settings
    from sandbox.server import Sandbox, SandboxConfig, log_uniform
    from testing.fake_discord import FakeInteraction, run_client, running_fake

    # Jobs take 5-90 s, so none finishes while the acknowledgements are measured; the runner still
    # submits every job, which is load the bot has in production right after an acknowledgement.
    sandbox = Sandbox(SandboxConfig(duration_sampler=log_uniform(5, 90), seed=profile.seed))
    await sandbox.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
            async with running_fake() as fake:
                # One member per invocation: quotas limit what one member may run at once, and a
                # burst of 50 is 50 people in a busy server, not one person pressing 50 times.
                members = [
                    fake.add_user(f"member-{i}") for i in range(profile.ack_burst * (profile.ack_rounds + 1))
                ]
                for user_id in members:
                    fake.add_member(fake.guild_id, user_id)
                settings = Settings(
                    discord_token=Secret(fake.token),
                    api_key=Secret(sandbox.config.api_key),
                    base_url=sandbox.base_url or "",
                    database_path=Path(tmp) / "ack.db",
                    dev_guild_id=fake.guild_id,
                    log_level="WARNING",
                )
                bot = ImagineBot(settings, guild_ready_timeout=0.05)
                async with run_client(fake, bot):
                    await bot.wait_until_ready()
                    # Warm-up: the first invocation pays for lazy imports and new connections.
                    warm = await fake.invoke_slash("imagine", {"prompt": "warm-up"}, user_id=members[0])
                    await fake.wait_for_callback(warm, timeout=10.0)
                    await _quiet(fake)
                    samples: list[float] = []
                    not_deferred = 0
                    for round_no in range(profile.ack_rounds):
                        users = members[1 + round_no * profile.ack_burst :][: profile.ack_burst]
                        inters: list[FakeInteraction] = await asyncio.gather(
                            *(
                                fake.invoke_slash("imagine", {"prompt": f"burst {round_no} #{i}"}, user_id=u)
                                for i, u in enumerate(users)
                            )
                        )
                        callbacks = await asyncio.gather(
                            *(fake.wait_for_callback(inter, timeout=15.0) for inter in inters)
                        )
                        for inter, callback in zip(inters, callbacks, strict=True):
                            samples.append((callback.received_at - inter.sent_at) * 1000.0)
                            if (callback.json or {}).get("type") != DEFERRED:
                                not_deferred += 1
                        # Each burst starts from a quiet bot: back to back, a burst would also wait for
                        # the previous one's status edits, and that is a different experiment.
                        await _quiet(fake)
    finally:
        await sandbox.stop()
    return AckResult(samples, not_deferred)


async def _quiet(fake: FakeDiscord, idle: float = 0.3, timeout: float = 15.0) -> None:
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
