"""Each server's prompt rules, compiled once and kept until they change, and checked off the event loop
and off the database thread, within a bounded time. No Discord here.

Compiling and matching run on the rules' own thread pool (bot/core/executors.py): image decoding or
DNS look-ups queued elsewhere cannot make a check miss its time bound."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Protocol

from bot.core.executors import RULES
from bot.core.policy.prompt_rules import CompiledRules, PromptRule, RuleMatch

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0
"""A check that has not finished by then is refused as unchecked (matching is linear in the prompt
and normally takes a few milliseconds; this only bounds a machine that is badly overloaded)."""
CACHED_GUILDS = 128

NOT_CHECKED_IN_TIME = RuleMatch(None, f"not checked within {CHECK_TIMEOUT:g} s")

Signature = tuple[object, ...]


class RuleSource(Protocol):
    async def rules_if_changed(
        self, guild_id: int, known: Signature | None
    ) -> tuple[Signature, list[PromptRule] | None]: ...


class RuleBook:
    def __init__(
        self, source: RuleSource, *, timeout: float = CHECK_TIMEOUT, cached_guilds: int = CACHED_GUILDS
    ) -> None:
        self._source = source
        self._timeout = timeout
        self._size = cached_guilds
        # guild -> (signature of the rules it was compiled from, the compilation, shared by every
        # request that arrives while it runs)
        self._cache: OrderedDict[int, tuple[Signature, asyncio.Task[CompiledRules]]] = OrderedDict()

    async def _compilation(self, guild_id: int) -> asyncio.Task[CompiledRules]:
        """The guild's compiled rules as they are now in the database (reading only their signature
        when nothing changed), compiling them on a worker thread if they changed."""
        known = self._cache.get(guild_id)
        signature, rules = await self._source.rules_if_changed(guild_id, known[0] if known else None)
        known = self._cache.get(guild_id)  # another request may have refreshed it meanwhile
        failed = known is not None and known[1].done() and not _usable(known[1])
        if known is None or known[0] != signature or failed:
            if rules is None:
                _, rules = await self._source.rules_if_changed(guild_id, None)
                assert rules is not None
            task = asyncio.create_task(RULES.run(CompiledRules, rules))
            known = (signature, task)
            self._cache[guild_id] = known
            if len(rules) > 0:
                log.debug("guild %s: compiling %d prompt rules", guild_id, len(rules))
        self._cache.move_to_end(guild_id)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return known[1]

    async def compiled(self, guild_id: int) -> CompiledRules:
        return await asyncio.shield(await self._compilation(guild_id))

    async def check(self, guild_id: int | None, prompt: str) -> RuleMatch | None:
        """The rule the prompt breaks, or None. A prompt that cannot be checked (too long once
        normalized, or not within the time bound) is refused, never let through unchecked."""
        if guild_id is None:
            return None
        # Match with the rules compiled last time while the database says whether they are still
        # current: the two waits overlap instead of adding up. If they changed, the guess is dropped.
        cached = self._cache.get(guild_id)
        guess: asyncio.Future[RuleMatch | None] | None = None
        if cached is not None and _usable(cached[1]) and len(cached[1].result()):
            guess = asyncio.ensure_future(RULES.run(cached[1].result().find, prompt))
            guess.add_done_callback(_retrieve)
        # The database read is not under the time bound: a busy database delays the answer (the
        # member has been acknowledged by then), it must not turn into a refusal.
        compilation = await self._compilation(guild_id)
        try:
            async with asyncio.timeout(self._timeout):
                compiled = await asyncio.shield(compilation)
                if not len(compiled):
                    return None
                if guess is not None and cached is not None and compilation is cached[1]:
                    return await asyncio.shield(guess)
                return await RULES.run(compiled.find, prompt)
        except TimeoutError:
            log.warning("guild %s: prompt rules not checked within %.1f s; refusing", guild_id, self._timeout)
            return NOT_CHECKED_IN_TIME


def _usable(task: asyncio.Task[CompiledRules]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _retrieve(future: asyncio.Future[RuleMatch | None]) -> None:
    # A guess that was dropped is never awaited; mark its outcome as seen.
    if not future.cancelled():
        future.exception()
