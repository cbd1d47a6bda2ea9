"""The process's thread pools for blocking work, one per kind: image decoding, prompt-rule matching and
DNS look-ups. No Discord here.

asyncio's default executor is shared by everything that calls `asyncio.to_thread` or resolves a name
with aiohttp's default resolver. When result images were decoded there, forty queued decodes held
every one of its threads (each waiting inside for the two-at-once decode limit), and another member's
rule check or a DNS look-up waited behind them for seconds. Here each kind of work has its own pool,
as many threads as its bound: work waits in its pool's queue before it gets a thread, never inside a
thread, so a flood of one kind cannot delay another.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class WorkPool:
    """A named pool of `size` threads, made on first use (one per process, shared by its event loops:
    nothing in it is tied to a loop)."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.size, thread_name_prefix=self.name)
            return self._executor

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on one of this pool's threads, once one is free. Cancelling the caller
        before a thread took the call drops it from the queue."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))


IMAGES = WorkPool("imagine-images", 2)
"""Decoding and re-encoding result images. Decoding takes memory in proportion to the pixels (about
100 MB at 16 MP with the re-encoding): two at once bound the process's peak."""
RULES = WorkPool("imagine-rules", 4)
"""Compiling and matching prompt rules: pure CPU under the GIL, so more threads would not be faster,
but a few let one server's long compilation (1000 rules) run beside other servers' checks."""
DNS = WorkPool("imagine-dns", 4)
"""getaddrinfo for every connection the process makes (the image API, result hosts, Discord): it
mostly waits on the network, so a few run side by side."""
