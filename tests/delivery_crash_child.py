"""A child process for the delivery crash tests: the real bot (`python -m bot`), except that it dies
(`os._exit`) once Discord has accepted an image on every route named in CRASH_AFTER_ROUTES, before any
of those deliveries was recorded. Each delivery is held at that point until the last one arrives.

    CRASH_AFTER_ROUTES=channel,status,ephemeral,dm,followup python -m tests.delivery_crash_child

Exit CRASHED: the process died there."""

from __future__ import annotations

import asyncio
import os

from bot.discord import sink
from bot.discord.delivery_routes import Parcel, Route, Sent
from bot.ops.cli import main

CRASHED = 86
ROUTES = set(os.environ.get("CRASH_AFTER_ROUTES", "").split(","))
_accepted: set[str] = set()
_record_sent = sink.DiscordSink._record_sent


async def _die_once_all_were_accepted(
    self: sink.DiscordSink, parcel: Parcel, route: Route, sent: Sent
) -> None:
    if route.kind not in ROUTES:
        await _record_sent(self, parcel, route, sent)
        return
    _accepted.add(route.kind)
    if _accepted >= ROUTES:
        os._exit(CRASHED)  # Discord has every image; the database has none of them
    await asyncio.Event().wait()  # held (not recorded) until the process dies


sink.DiscordSink._record_sent = _die_once_all_were_accepted  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(main([]))
