"""One throttle for everything the bot rate-limits on Discord: reposts, mod-log entries."""

from __future__ import annotations

from collections.abc import Hashable

from bot.core.clock import Clock

# Past this many keys, the ones whose interval has run out are forgotten (memory stays bounded).
MAX_KEYS = 10_000


class RateLimiter:
    """One use per `interval` seconds per key, on the bot's clock. In memory: a restart forgets it,
    which costs at most one extra use."""

    def __init__(self, clock: Clock, interval: float) -> None:
        self.clock = clock
        self.interval = interval
        self._last: dict[Hashable, float] = {}

    def wait_needed(self, key: Hashable) -> float:
        """0 and the use is counted, or the seconds left before the key may act again."""
        now = self.clock.time()
        left = self._last.get(key, float("-inf")) + self.interval - now
        if left > 0:
            return left
        if len(self._last) > MAX_KEYS:
            self._last = {k: t for k, t in self._last.items() if t + self.interval > now}
        self._last[key] = now
        return 0.0
