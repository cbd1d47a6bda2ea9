"""Where finished jobs are delivered: downloads and the upload, apart from the poll slots.

A result host that trickles a byte a second would otherwise hold a poll slot for minutes, and a few of
them would stall every other job's polls. Here each delivery holds one of `size` delivery slots, and a
job's downloads together have one deadline: a slow host delays only its own job, and only so long.
No Discord here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from bot.adapters.media import ImageFile
from bot.core.i18n import N_

log = logging.getLogger(__name__)

# What the member reads about an image that did not arrive (translated where it is shown).
MSG_TOO_SLOW = N_("the image host did not send it in time")
MSG_FAILED = N_("the image could not be downloaded")


class DeliveryPool:
    def __init__(self, size: int, deadline: float) -> None:
        self._slots = asyncio.Semaphore(size)
        self.deadline = deadline

    async def run(self, deliver: Callable[[], Awaitable[None]]) -> None:
        """Run one job's delivery once a slot is free."""
        async with self._slots:
            await deliver()

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
