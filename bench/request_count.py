"""Requests of four images against requests of one, in the same run: how fast /imagine count:4 is
acknowledged next to count:1 (bursts of simultaneous invocations, the two kinds interleaved), and how
soon each image is visible in its request's message once its task finished.

The real ImagineBot runs against the fake Discord and the in-process sandbox, as in `bench.ack`. An
acknowledgement is timed on the fake's clock (INTERACTION_CREATE sent → the bot's callback arrived).
"Visible" is when Discord received the call that put the image's file in a message (the post that
created the request's message, or the edit that added it), against the job's `finished_at` (the poll
that saw the task complete): the bot's own cost of showing it, download included.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.profiles import Profile
from bench.stats import percentile

if TYPE_CHECKING:
    from testing.fake_discord import FakeDiscord

DEFERRED = 5
KINDS = (4, 1)  # images per request, interleaved in every burst
FILE = re.compile(r"imagine-(\d+)-\d+\.")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@dataclass
class CountResult:
    ack_ms: dict[int, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    visible_ms: dict[int, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    last_visible_ms: list[float] = field(default_factory=list)  # the last image of each count:4 request
    not_deferred: int = 0
    not_shown: int = 0

    def figures(self) -> dict[str, float | None]:
        def p(values: list[float], q: float) -> float | None:
            return percentile(values, q) if values else None

        ack4, ack1 = p(self.ack_ms[4], 99), p(self.ack_ms[1], 99)
        return {
            "count4_ack_p99_ms": ack4,
            "count1_ack_p99_ms": ack1,
            "count4_vs_count1_ack_p99": ack4 / ack1 if ack4 is not None and ack1 else None,
            "count4_visible_p95_ms": p(self.visible_ms[4], 95),
            "count4_last_visible_p95_ms": p(self.last_visible_ms, 95),
            "count1_visible_p95_ms": p(self.visible_ms[1], 95),
            "count4_last_vs_count1_visible_p95": _ratio(
                p(self.last_visible_ms, 95), p(self.visible_ms[1], 95)
            ),
            "count_ack_samples": float(sum(len(v) for v in self.ack_ms.values())),
            "count_not_deferred": float(self.not_deferred),
            "count_images_not_shown": float(self.not_shown),
        }

    def table(self) -> str:
        f = self.figures()

        def ms(key: str) -> str:
            value = f[key]
            return "-" if value is None else f"{value:.1f} ms"

        def row(label: str, four: str, one: str | None = None) -> str:
            both = f"  {label:<16}count:4 {ms(four):>10}"
            return both + (f"  count:1 {ms(one):>10}" if one else "")

        return "\n".join(
            [
                "requests of 4 vs 1 image (interleaved, same run)",
                row("ack p99", "count4_ack_p99_ms", "count1_ack_p99_ms"),
                row("visible p95", "count4_visible_p95_ms", "count1_visible_p95_ms"),
                row("last image p95", "count4_last_visible_p95_ms"),
            ]
        )


async def run_request_counts(profile: Profile) -> CountResult:
    from bot.discord.client import ImagineBot
    from bot.ops.config import Secret, Settings
    from sandbox.server import Sandbox, SandboxConfig, log_uniform
    from testing.fake_discord import FakeInteraction, run_client, running_fake

    # Tasks of 2-20 s: they finish after the burst's acknowledgements, spread out as real ones are (all
    # of a burst's 125 images finishing within a second would measure the delivery queue, the same for
    # both kinds). A smoke run only proves the scenario runs: shorter.
    low, high = (0.1, 0.3) if profile.name == "smoke" else (2.0, 20.0)
    sandbox = Sandbox(SandboxConfig(duration_sampler=log_uniform(low, high), seed=profile.seed))
    await sandbox.start()
    result = CountResult()
    wall_minus_monotonic = time.time() - time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-count-") as tmp:
            async with running_fake() as fake:
                burst, rounds = profile.ack_burst, profile.ack_rounds
                members = [fake.add_user(f"member-{i}") for i in range(burst * rounds + 1)]
                for user_id in members:
                    fake.add_member(fake.guild_id, user_id)
                settings = Settings(
                    discord_token=Secret(fake.token),
                    api_key=Secret(sandbox.config.api_key),
                    base_url=sandbox.base_url or "",
                    database_path=Path(tmp) / "counts.db",
                    dev_guild_id=fake.guild_id,
                    default_daily_quota=100,
                    log_level="WARNING",
                )
                bot = ImagineBot(settings, guild_ready_timeout=0.05)
                async with run_client(fake, bot):
                    await bot.wait_until_ready()
                    await bot.store.settings.update_policy(
                        fake.guild_id, fake.owner_id, time.time(), max_running=10
                    )
                    warm = await fake.invoke_slash("imagine", {"prompt": "warm-up"}, user_id=members[0])
                    await fake.wait_for_callback(warm, timeout=10.0)
                    await _all_told(bot, timeout=30.0)
                    await _quiet(fake)
                    for round_no in range(rounds):
                        users = members[1 + round_no * burst :][:burst]
                        asked: list[tuple[int, dict[str, Any]]] = []
                        for i in range(len(users)):
                            count = KINDS[i % len(KINDS)]
                            prompt = f"round {round_no} #{i} of {count}"
                            asked.append((count, {"prompt": prompt, "count": count}))
                        inters: list[FakeInteraction] = await asyncio.gather(
                            *(
                                fake.invoke_slash("imagine", options, user_id=u)
                                for (_, options), u in zip(asked, users, strict=True)
                            )
                        )
                        callbacks = await asyncio.gather(
                            *(fake.wait_for_callback(inter, timeout=15.0) for inter in inters)
                        )
                        for (count, _), inter, callback in zip(asked, inters, callbacks, strict=True):
                            result.ack_ms[count].append((callback.received_at - inter.sent_at) * 1000.0)
                            if (callback.json or {}).get("type") != DEFERRED:
                                result.not_deferred += 1
                        await _all_told(bot, timeout=60.0)
                        await _quiet(fake)
                    _visibility(fake, await _jobs(bot), wall_minus_monotonic, result)
    finally:
        await sandbox.stop()
    return result


async def _jobs(bot: Any) -> list[Any]:
    jobs, job_id = [], 1
    while (job := await bot.store.jobs.get(job_id)) is not None:
        jobs.append(job)
        job_id += 1
    return jobs


async def _all_told(bot: Any, timeout: float) -> None:
    """Until no job of the bot is left undelivered (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not await bot.store.jobs.unfinished(bot.settings.dev_guild_id, None, 1):
            return
        await asyncio.sleep(0.1)


def _visibility(fake: FakeDiscord, jobs: list[Any], offset: float, result: CountResult) -> None:
    shown: dict[int, float] = {}
    for request in fake.requests:
        if request.status != 200:
            continue
        for upload in request.files:
            if (match := FILE.match(upload.filename)) and int(match[1]) not in shown:
                shown[int(match[1])] = request.received_at + offset
    last: dict[int, tuple[float, float]] = {}  # request -> (its last task's finish, that image's delay)
    for job in jobs:
        if job.prompt == "warm-up" or job.finished_at is None:
            continue
        if job.id not in shown:
            result.not_shown += 1
            continue
        delay = (shown[job.id] - job.finished_at) * 1000.0
        kind = 4 if job.request_size > 1 else 1
        result.visible_ms[kind].append(delay)
        if kind == 4 and job.finished_at >= last.get(job.request, (0.0, 0.0))[0]:
            last[job.request] = (job.finished_at, delay)
    result.last_visible_ms.extend(delay for _, delay in last.values())


async def _quiet(fake: FakeDiscord, idle: float = 0.3, timeout: float = 15.0) -> None:
    """Until the fake has received no request for `idle` seconds (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen, since = len(fake.requests), loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        if len(fake.requests) != seen:
            seen, since = len(fake.requests), loop.time()
        elif loop.time() - since >= idle:
            return
