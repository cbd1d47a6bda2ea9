"""Requests of four images against requests of one, in the same run: how fast /imagine count:4 is
acknowledged next to count:1 (bursts of simultaneous invocations, the two kinds interleaved), and how
soon each image is visible in its request's message once its task finished.

The real ImagineBot runs against the fake Discord and the in-process sandbox, set up and invoked in
bursts by `bench.ack`'s `bench_bot` and `run_bursts`. An acknowledgement is timed on the fake's clock
(INTERACTION_CREATE sent → the bot's callback arrived).
"Visible" is when Discord received the call that put the image's file in a message (the post that
created the request's message, or the edit that added it), against the job's `finished_at` (the poll
that saw the task complete): the bot's own cost of showing it, download included.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.ack import bench_bot, quiet, run_bursts, warm_up
from bench.profiles import Profile
from bench.stats import percentile

if TYPE_CHECKING:
    from testing.fake_discord import FakeDiscord

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
    from sandbox.server import Sandbox, SandboxConfig, log_uniform

    # Tasks of 2-20 s: they finish after the burst's acknowledgements, spread out as real ones are (all
    # of a burst's 125 images finishing within a second would measure the delivery queue, the same for
    # both kinds). A smoke run only proves the scenario runs: shorter.
    low, high = (0.1, 0.3) if profile.name == "smoke" else (2.0, 20.0)
    sandbox = Sandbox(SandboxConfig(duration_sampler=log_uniform(low, high), seed=profile.seed))
    await sandbox.start()
    result = CountResult()
    wall_minus_monotonic = time.time() - time.monotonic()
    burst, rounds = profile.ack_burst, profile.ack_rounds

    def options(round_no: int, i: int) -> dict[str, Any]:
        count = kind_of(i)
        return {"prompt": f"round {round_no} #{i} of {count}", "count": count}

    try:
        async with bench_bot(sandbox, 1 + burst * rounds, "counts.db", default_daily_quota=100) as run:
            fake, bot = run.fake, run.bot
            await bot.store.settings.update_policy(fake.guild_id, fake.owner_id, time.time(), max_running=10)
            await warm_up(fake, run.members[0])
            await _all_told(bot, timeout=30.0)
            await quiet(fake)

            async def settle() -> None:
                await _all_told(bot, timeout=60.0)
                await quiet(fake)

            acks = await run_bursts(fake, run.members[1:], burst, rounds, options, settle)
            for each in acks:
                for i, ack in enumerate(each):
                    result.ack_ms[kind_of(i)].append(ack.ms)
                    result.not_deferred += not ack.deferred
            _visibility(fake, await _jobs(bot), wall_minus_monotonic, result)
    finally:
        await sandbox.stop()
    return result


def kind_of(i: int) -> int:
    """Invocation i's count: the kinds interleaved in every burst."""
    return KINDS[i % len(KINDS)]


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
