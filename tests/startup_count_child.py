"""`python -m bot` as a real process, counting what its start and its stop do to the database: how
often the store is opened (each open runs the migrations, and SQLite's quick_check) and how often the
leases are released once the stop has begun. The counts go as JSON to the file COUNTS_FILE names when
the process ends (tests/test_startup_store.py)."""

from __future__ import annotations

import atexit
import collections
import json
import os
import threading
from pathlib import Path
from typing import Any

from bot.adapters.store import Store, jobs_repo
from bot.discord import client
from bot.ops import cli

counts: collections.Counter[str] = collections.Counter()
guard = threading.Lock()  # lease writes run on the store's threads
stopping = threading.Event()


def count(name: str) -> None:
    with guard:
        counts[name] += 1


def counted_open(name: str) -> Any:
    original = getattr(Store, name).__func__

    async def opener(cls: type[Store], *args: Any, **kwargs: Any) -> Store:
        count("store_opens")
        store: Store = await original(cls, *args, **kwargs)
        return store

    return classmethod(opener)


def counted_release(original: Any) -> Any:
    def release(*args: Any, **kwargs: Any) -> Any:
        if stopping.is_set():
            count("lease_releases_at_stop")
        return original(*args, **kwargs)

    return release


Store.open = counted_open("open")  # type: ignore[method-assign]
Store.open_url = counted_open("open_url")  # type: ignore[method-assign]
# The repository binds its functions when the class is made (`Jobs.reset_leases = call(...)`): wrap the
# function each binding runs.
for name in ("reset_leases", "release_leases"):
    binding = jobs_repo.Jobs.__dict__[name]
    binding._fn = counted_release(binding._fn)
close_once = client.ImagineBot._close_once


async def closing(self: client.ImagineBot) -> None:
    stopping.set()
    await close_once(self)
    count("closes_finished")


client.ImagineBot._close_once = closing  # type: ignore[method-assign]
atexit.register(lambda: Path(os.environ["COUNTS_FILE"]).write_text(json.dumps(counts)))

if __name__ == "__main__":
    raise SystemExit(cli.main([]))
