"""The one retry helper of the runner: database writes, sink calls, downloads and submits all use it.

Why not tenacity: every retry here pauses in its own way (the store backs off in real seconds, a
submit puts its job back to QUEUED while it waits and stops if the job was cancelled meanwhile, the
test clock scales every wait), and a 429 decides its own delay. Tenacity would need a custom `sleep`,
`wait` and `retry` object per call site; one function with those three as parameters is shorter and
reads in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def doubling(first: float, cap: float) -> Callable[[int, Exception], float]:
    """first, 2·first, 4·first, ... never beyond `cap`."""
    return lambda attempt, _: min(cap, first * 2.0 ** (attempt - 1))


def growing(step: float) -> Callable[[int, Exception], float]:
    """step, 2·step, 3·step, ..."""
    return lambda attempt, _: step * attempt


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: Callable[[Exception], bool],
    attempts: int | None,
    delay: Callable[[int, Exception], float],
    pause: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_retry: Callable[[int, Exception], object] | None = None,
) -> T:
    """Run `call` until it returns. An exception `retry_on` accepts is retried after `pause(delay(attempt,
    error))`, up to `attempts` calls in all (None: for ever); any other exception, or the last one,
    propagates. `on_retry(attempt, error)` is told before each pause (for a log line)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as error:
            if not retry_on(error) or (attempts is not None and attempt >= attempts):
                raise
            if on_retry is not None:
                on_retry(attempt, error)
            await pause(delay(attempt, error))
