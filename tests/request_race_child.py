"""A child process for the request race test: the real bot (`python -m bot`), except that

- its runner follows only the jobs of RACE_SOURCE (so the test decides which process makes which image
  of a request), and
- the images of the jobs RACE_JOBS wait for each other before they go into the request's message:
  each process writes `<RACE_DIR>/<job id>` and goes on once every one of them is there, so that two
  images of one request reach the message at the same moment in two processes.

    RACE_SOURCE=race-a RACE_JOBS=2,3 RACE_DIR=/tmp/x python -m tests.request_race_child
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from bot.core.models import Job
from bot.discord import client
from bot.discord.delivery_routes import Parcel
from bot.discord.request_message import RequestMessages
from bot.ops.cli import main

SOURCE = os.environ.get("RACE_SOURCE", "discord")
JOBS = {int(n) for n in os.environ.get("RACE_JOBS", "").split(",") if n}
PLACE = Path(os.environ.get("RACE_DIR", "."))
_build_runner = client.build_runner
_show = RequestMessages.show


def _runner_of_source(*args: Any, **kwargs: Any) -> Any:
    return _build_runner(*args, **{**kwargs, "source": SOURCE})


async def _show_together(self: RequestMessages, job: Job, parcel: Parcel | None) -> Any:
    if job.id in JOBS:
        (PLACE / str(job.id)).touch()
        while not all((PLACE / str(n)).exists() for n in JOBS):
            await asyncio.sleep(0.005)  # the other process's image is on its way: wait for it
    return await _show(self, job, parcel)


client.build_runner = _runner_of_source  # type: ignore[assignment]
RequestMessages.show = _show_together  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(main([]))
