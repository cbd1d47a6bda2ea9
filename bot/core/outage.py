"""Whether the image API is answering at all, judged across every job, and the waits that follow.

One poll that fails says little; several in a row, from whatever jobs, say the service is down. Then
polling each job only adds load to a service that cannot answer: the runner stops, sends a single
probe at growing intervals instead, and wakes every job once a probe (or any request) gets an answer.
Pure bookkeeping, no I/O: the runner feeds it the outcome of each request and the time.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

# Probes never come closer than this, whatever POLL_MAX_INTERVAL says: together with the one poll
# that may be in flight while the service is only suspected, this keeps an outage under 1 request/s.
PROBE_MIN_GAP = 1.0
# How many past outages to remember for the time limit's extension.
_REMEMBERED = 256


def retry_after_delay(retry_after: float, rng: random.Random) -> float:
    """A 429's Retry-After as given, plus a little jitter (up to a tenth of it, at most a second) so
    that jobs told the same moment do not all come back in the same instant."""
    return retry_after + rng.uniform(0.0, min(1.0, 0.1 * max(retry_after, 1.0)))


def backoff_delay(errors: int, min_interval: float, max_interval: float, rng: random.Random) -> float:
    """Exponential backoff after `errors` failed polls in a row, with "equal jitter" (between half
    and all of the step), never beyond `max_interval`: once the service answers again, every job is
    polled within max_interval."""
    step = min(max_interval, min_interval * 2.0 ** max(errors, 1))
    return min(max_interval, step / 2 + rng.uniform(0.0, step / 2))


@dataclass(frozen=True)
class OutagePolicy:
    failures: int = 3
    """Failed requests in a row (from any jobs, with no answer in between) that make an outage."""
    probe_max_gap: float = 15.0
    """The longest wait between two probes: POLL_MAX_INTERVAL (or PROBE_MIN_GAP if that is larger)."""


class OutageGuard:
    def __init__(self, policy: OutagePolicy | None = None, rng: random.Random | None = None) -> None:
        self.policy = policy or OutagePolicy()
        self._rng = rng or random.Random()
        self._failures = 0
        self._down_since: float | None = None
        self._probe_gap = PROBE_MIN_GAP
        self.next_probe_at = 0.0
        self._past: deque[tuple[float, float]] = deque(maxlen=_REMEMBERED)

    @property
    def down(self) -> bool:
        return self._down_since is not None

    @property
    def suspect(self) -> bool:
        """A request failed and none has been answered since: send one at a time until we know."""
        return self._failures > 0

    def answered(self, now: float) -> bool:
        """The API answered something (any status but 5xx, a time-out or a broken connection).
        True if that ends an outage."""
        self._failures = 0
        if self._down_since is None:
            return False
        self._past.append((self._down_since, now))
        self._down_since = None
        return True

    def failed(self, now: float) -> bool:
        """A request met a transient error. True if that starts an outage."""
        self._failures += 1
        if self._down_since is not None or self._failures < self.policy.failures:
            return False
        self._down_since = now
        self._probe_gap = PROBE_MIN_GAP
        self.next_probe_at = now + self._jittered(self._probe_gap)
        return True

    def probe_failed(self, now: float) -> None:
        """A probe went unanswered: the next one waits twice as long, up to probe_max_gap."""
        self._probe_gap = min(self._probe_gap * 2, max(self.policy.probe_max_gap, PROBE_MIN_GAP))
        self.next_probe_at = now + self._jittered(self._probe_gap)

    def _jittered(self, gap: float) -> float:
        # Only downwards, and never below the floor, so the probe rate stays under one a second.
        return max(PROBE_MIN_GAP, gap * self._rng.uniform(0.9, 1.0))

    def downtime(self, start: float, end: float) -> float:
        """Seconds of [start, end] the service was down (as this process saw it): a job's time limit
        is extended by them, so an outage shorter than the limit times out no job."""
        spans = list(self._past)
        if self._down_since is not None:
            spans.append((self._down_since, end))
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)
