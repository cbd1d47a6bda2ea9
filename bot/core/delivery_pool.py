"""Where finished jobs are delivered: downloads and the upload, apart from the poll slots.

A result host that trickles a byte a second would otherwise hold a poll slot for minutes, and a few of
them would stall every other job's polls. Here each delivery holds one of `size` delivery slots, and a
job's downloads together have one deadline: a slow host delays its own jobs, and only so long.

Slots are shared fairly between result hosts: the jobs fetching from one host (its origin: scheme,
name and port) hold at most `host_share` slots, half of them by default. Eight jobs whose host
trickles cannot take every slot, so a job whose images come from elsewhere starts at once; the slow
host's other jobs wait their turn without their deadline running. No Discord here.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from bot.core.image_file import ImageFile
from bot.core.texts import msg

log = logging.getLogger(__name__)

# What the member reads about an image that did not arrive (translated where it is shown).
MSG_TOO_SLOW = msg("the image host did not send it in time")
MSG_FAILED = msg("the image could not be downloaded")


def origins_of(refs: Iterable[str]) -> frozenset[str]:
    """The hosts a job's images are fetched from (inline data is fetched from none)."""
    found: set[str] = set()
    for ref in refs:
        if ref.startswith("data:"):
            continue
        try:
            parts = urlsplit(ref)
            found.add(f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}")
        except ValueError:
            found.add(ref)  # not a usable URL: its fetch fails at once, it only needs a key
    return frozenset(found)


class DeliveryPool:
    def __init__(self, size: int, deadline: float, *, host_share: int | None = None) -> None:
        self.size = size
        self.host_share = host_share if host_share is not None else max(1, size // 2)
        self.deadline = deadline
        self._in_use = 0
        self._by_host: collections.Counter[str] = collections.Counter()
        self._waiting: collections.deque[tuple[frozenset[str], asyncio.Future[None]]] = collections.deque()

    @property
    def in_use(self) -> int:
        """Deliveries running now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Deliveries waiting for a slot (or for their host's share)."""
        return len(self._waiting)

    async def run(self, deliver: Callable[[], Awaitable[None]], refs: Sequence[str] = ()) -> None:
        """Run one job's delivery once a slot is free and none of the hosts of its images (`refs`)
        holds its share already."""
        hosts = origins_of(refs)
        await self._acquire(hosts)
        try:
            await deliver()
        finally:
            self._release(hosts)

    def _may_start(self, hosts: frozenset[str]) -> bool:
        return self._in_use < self.size and all(self._by_host[h] < self.host_share for h in hosts)

    def _take(self, hosts: frozenset[str]) -> None:
        self._in_use += 1
        self._by_host.update(hosts)

    async def _acquire(self, hosts: frozenset[str]) -> None:
        # Every waiter that could start was started when the last slot came free, so a newcomer that
        # may start overtakes only jobs held back by their host's share.
        if self._may_start(hosts):
            self._take(hosts)
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (hosts, granted)
        self._waiting.append(entry)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(hosts)  # the slot came just as the job was cancelled: pass it on
            elif entry in self._waiting:
                self._waiting.remove(entry)
            raise

    def _release(self, hosts: frozenset[str]) -> None:
        self._in_use -= 1
        self._by_host.subtract(hosts)
        for host in hosts:
            if self._by_host[host] <= 0:
                del self._by_host[host]
        # In arrival order, every waiting job that may start now does.
        for entry in list(self._waiting):
            if self._in_use >= self.size:
                break
            waiting_hosts, granted = entry
            if granted.done():  # cancelled while it waited; its task is about to leave the queue
                self._waiting.remove(entry)
                continue
            if self._may_start(waiting_hosts):
                self._waiting.remove(entry)
                self._take(waiting_hosts)
                granted.set_result(None)

    async def fetch_all(
        self, job_id: int, refs: Sequence[str], fetch_one: Callable[[str], Coroutine[Any, Any, ImageFile]]
    ) -> list[ImageFile]:
        """Fetch a job's images side by side; whatever has not arrived by the deadline is given up
        (its link kept for the member, unless it was inline data)."""
        tasks = [asyncio.create_task(fetch_one(ref)) for ref in refs]
        if not tasks:
            return []
        try:
            _done, pending = await asyncio.wait(tasks, timeout=self.deadline)
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning(
                "job %s: %s of %s images not downloaded within %g s",
                job_id,
                len(pending),
                len(tasks),
                self.deadline,
            )
        images: list[ImageFile] = []
        for ref, task in zip(refs, tasks, strict=True):
            url = None if ref.startswith("data:") else ref
            if task in pending or task.cancelled():
                images.append(ImageFile(url=url, data=None, error=MSG_TOO_SLOW))
            elif (error := task.exception()) is not None:
                log.error("job %s: download failed unexpectedly", job_id, exc_info=error)
                images.append(ImageFile(url=url, data=None, error=MSG_FAILED))
            else:
                images.append(task.result())
        return images
