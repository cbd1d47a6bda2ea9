"""Prompt rules under hostile prompts.

`rules`: one check of a worst-case 5000-character prompt against 500 and 1000 rules of a server
(word rules, phrases and regular expressions), through `RuleBook.check` as admission runs it: the
signature read on the database thread, the compiled rules from the cache, matching on a worker
thread. The prompts are the ones that cost most: a ligature that grows 18-fold under NFKC (refused
as unchecked at the cap), ligatures that grow just under the cap, spaced leetspeak, single letters,
symbols inside words, and 5000 distinct characters from many scripts.

`rules_ack`: the real bot against the fake Discord with 1000 rules; in each round 8 members send
such prompts at once while 8 other members send ordinary `/imagine` and `/usage` requests; the
figure is the slowest acknowledgement of the other members (from the interaction leaving the fake to its
callback arriving), the target 1 s.
"""

from __future__ import annotations

import asyncio
import random
import string
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from bench.profiles import Profile
from bench.stats import percentile
from bot.adapters.store import Store
from bot.core.policy.prompt_rules import MAX_RULES, CompiledRules
from bot.core.policy.rulebook import RuleBook

GUILD = 4242
ADMIN = 1
# Per profile: checks timed per prompt kind and rule count, and rounds of the acknowledgement scenario.
SAMPLES = {"full": 300, "quick": 100, "smoke": 5}
ACK_ROUNDS = {"full": 5, "quick": 2, "smoke": 1}


def worst_prompts(seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    many_scripts = "".join(chr(rng.randint(0x100, 0x2FFF)) for _ in range(5000))
    return {
        "nfkc_18x": "\ufdfa" * 5000,
        "nfkc_3x": ("\ufb03 " * 2500)[:5000],
        "spaced_leet": ("a z 3 b r 4 " * 500)[:5000],
        "single_letters": (" ".join(string.ascii_lowercase) + " ") * 96,
        "letter_pairs": ("a b cd " * 800)[:5000],
        "inner_symbols": ("b!t|e+s 1 " * 500)[:5000],
        "many_scripts": many_scripts,
    }


def make_rules(count: int, seed: int) -> list[tuple[str, str]]:
    """Word rules, phrases and regular expressions in the proportions a busy server might have."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))

    rules: list[tuple[str, str]] = []
    for n in range(count):
        if n % 5 == 4:
            template = rng.choice(
                [f"{word()}\\s*{word()}", f"{word()}[0-9]+", f"(?:{word()}|{word()})s?", f"b[a4@]d{word()}"]
            )
            rules.append(("regex", template))
        elif n % 7 == 6:
            rules.append(("word", f"{word()} {word()}"))
        else:
            rules.append(("word", word()))
    return rules


@dataclass(frozen=True)
class RulesResult:
    samples: dict[int, list[float]]  # rule count -> check times in ms, through RuleBook.check
    matching: dict[int, list[float]]  # rule count -> the matching alone (CompiledRules.find), in ms
    matching_cpu: dict[int, list[float]]  # the same in CPU time of the matching thread: what the
    # check costs, without the waits for a core that other processes on a shared machine cause
    cold: dict[int, list[float]]  # prompts of 5000 characters the process has never seen, in ms
    worst_case: dict[int, str]  # rule count -> the prompt kind with the highest p99

    def figures(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for count, samples in self.samples.items():
            out[f"rules_check_p99_ms_{count}"] = percentile(samples, 99)
            out[f"rules_check_p50_ms_{count}"] = percentile(samples, 50)
            out[f"rules_check_max_ms_{count}"] = max(samples)
            out[f"rules_match_p99_ms_{count}"] = percentile(self.matching[count], 99)
            out[f"rules_match_cpu_p99_ms_{count}"] = percentile(self.matching_cpu[count], 99)
            out[f"rules_match_cold_max_ms_{count}"] = max(self.cold[count])
        return out


def _unseen_prompts(count: int, seed: int) -> list[str]:
    """Prompts of 5000 assigned characters that this process has never folded: each character is
    folded once per process and remembered, so this is the one-off cost a first sight pays."""
    from bot.core.policy.prompt_rules import _FOLD

    fresh = [
        chr(code)
        for code in range(0x3000, 0x30000)
        if code not in _FOLD and unicodedata.category(chr(code)) not in {"Cn", "Co", "Cs"}
    ]
    random.Random(seed).shuffle(fresh)
    return ["".join(fresh[n * 5000 : (n + 1) * 5000]) for n in range(count)]


def _cold_check(compiled: CompiledRules, prompt: str) -> float:
    begin = time.perf_counter()
    compiled.find(prompt)
    return (time.perf_counter() - begin) * 1000.0


async def _store_with_rules(path: Path, count: int, seed: int) -> Store:
    store = await Store.open(path)
    now = time.time()
    for kind, pattern in make_rules(count, seed):
        await store.settings.add_rule(GUILD, kind, pattern, ADMIN, now)
    return store


async def run_rules(profile: Profile) -> RulesResult:
    prompts = worst_prompts(profile.seed)
    samples: dict[int, list[float]] = {}
    matching: dict[int, list[float]] = {}
    matching_cpu: dict[int, list[float]] = {}
    cold: dict[int, list[float]] = {}
    worst: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="imagine-bench-rules-") as folder:
        for count in (500, MAX_RULES):
            store = await _store_with_rules(Path(folder) / f"rules-{count}.db", count, profile.seed)
            try:
                book = RuleBook(store.settings)
                await book.check(GUILD, "warm-up: compiles the rules once")
                timings: list[float] = []
                p99s: dict[str, float] = {}
                for name, prompt in prompts.items():
                    mine: list[float] = []
                    for _ in range(SAMPLES.get(profile.name, 100)):
                        begin = time.perf_counter()
                        await book.check(GUILD, prompt)
                        mine.append((time.perf_counter() - begin) * 1000.0)
                    p99s[name] = percentile(mine, 99)
                    timings += mine
                samples[count] = timings
                worst[count] = max(p99s, key=lambda k: p99s[k])
                compiled = await book.compiled(GUILD)
                alone: list[float] = []
                cpu: list[float] = []
                for prompt in prompts.values():
                    for _ in range(SAMPLES.get(profile.name, 100)):
                        begin, begin_cpu = time.perf_counter(), time.thread_time()
                        compiled.find(prompt)
                        alone.append((time.perf_counter() - begin) * 1000.0)
                        cpu.append((time.thread_time() - begin_cpu) * 1000.0)
                matching[count] = alone
                matching_cpu[count] = cpu
                cold[count] = [
                    _cold_check(compiled, fresh) for fresh in _unseen_prompts(3, profile.seed + count)
                ]
            finally:
                await store.close()
    return RulesResult(samples, matching, matching_cpu, cold, worst)


@dataclass(frozen=True)
class RulesAckResult:
    others_ms: list[float]
    hostile_ms: list[float]
    not_answered: int

    def figures(self) -> dict[str, float | None]:
        return {
            "rules_ack_others_max_ms": max(self.others_ms),
            "rules_ack_others_p99_ms": percentile(self.others_ms, 99),
            "rules_ack_hostile_max_ms": max(self.hostile_ms),
            "rules_ack_samples": float(len(self.others_ms)),
            "rules_ack_not_answered": float(self.not_answered),
        }


async def run_rules_ack(profile: Profile) -> RulesAckResult:
    from bot.discord.client import ImagineBot
    from bot.ops.config import Secret, Settings
    from sandbox.server import Sandbox, SandboxConfig, log_uniform
    from testing.fake_discord import FakeInteraction, run_client, running_fake

    hostile = list(worst_prompts(profile.seed).values())
    sandbox = Sandbox(SandboxConfig(duration_sampler=log_uniform(5, 90), seed=profile.seed))
    await sandbox.start()
    others: list[float] = []
    attackers: list[float] = []
    not_answered = 0
    try:
        with tempfile.TemporaryDirectory(prefix="bench-rules-ack-") as tmp:
            async with running_fake() as fake:
                rounds = ACK_ROUNDS.get(profile.name, 2)
                people = [fake.add_member(fake.guild_id, username=f"m{i}") for i in range(16 * rounds + 1)]
                settings = Settings(
                    discord_token=Secret(fake.token),
                    api_key=Secret(sandbox.config.api_key),
                    base_url=sandbox.base_url or "",
                    database_path=Path(tmp) / "rules-ack.db",
                    dev_guild_id=fake.guild_id,
                    log_level="WARNING",
                )
                bot = ImagineBot(settings, guild_ready_timeout=0.05)
                async with run_client(fake, bot):
                    await bot.wait_until_ready()
                    now = time.time()
                    for kind, pattern in make_rules(MAX_RULES, profile.seed):
                        await bot.store.settings.add_rule(fake.guild_id, kind, pattern, ADMIN, now)
                    warm = await fake.invoke_slash("imagine", {"prompt": "warm-up"}, user_id=people[0])
                    await fake.wait_for_callback(warm, timeout=10.0)
                    for round_no in range(rounds):
                        group = people[1 + 16 * round_no :][:16]
                        sends = [
                            fake.invoke_slash("imagine", {"prompt": hostile[i % len(hostile)]}, user_id=u)
                            for i, u in enumerate(group[:8])
                        ]
                        # The others: half ask for an image, half for their /usage.
                        sends += [
                            fake.invoke_slash(
                                "imagine", {"prompt": f"a calm lake, round {round_no}"}, user_id=u
                            )
                            if i % 2
                            else fake.invoke_slash("usage", {}, user_id=u)
                            for i, u in enumerate(group[8:])
                        ]
                        inters: list[FakeInteraction] = await asyncio.gather(*sends)
                        for index, inter in enumerate(inters):
                            try:
                                callback = await fake.wait_for_callback(inter, timeout=10.0)
                            except TimeoutError:
                                not_answered += 1
                                continue
                            elapsed = (callback.received_at - inter.sent_at) * 1000.0
                            (attackers if index < 8 else others).append(elapsed)
                        await asyncio.sleep(0.5)  # let the round's jobs be submitted before the next
    finally:
        await sandbox.stop()
    return RulesAckResult(others, attackers, not_answered)
