"""A child process for the request crash tests: the real bot (`python -m bot`), except that it dies
(`os._exit`) once Discord has taken an image of a request of several images and before that was
recorded:

- CRASH_AT=create: when the request's message has just been posted (its first image);
- CRASH_AT=edit: when an edit has just added an image to the request's message.

Exit CRASHED: the process died there."""

from __future__ import annotations

import os
from typing import Any

import discord

from bot.discord import request_message, sink
from bot.discord.delivery_routes import Parcel, Route, Sent
from bot.ops.cli import main

CRASHED = 86
AT = os.environ.get("CRASH_AT", "")
_record_sent = sink.DiscordSink._record_sent
_edit_on_route = request_message.edit_on_route


async def _die_once_posted(self: sink.DiscordSink, parcel: Parcel, route: Route, sent: Sent) -> None:
    if parcel.job.request_size > 1:
        os._exit(CRASHED)  # Discord has the request's message; the database does not know it
    await _record_sent(self, parcel, route, sent)


async def _die_once_edited(*args: Any, **kwargs: Any) -> Any:
    edited = await _edit_on_route(*args, **kwargs)
    if any(isinstance(a, discord.File) for a in kwargs.get("attachments", [])):
        os._exit(CRASHED)  # the edit added an image; its delivery is still "sending"
    return edited


if AT == "create":
    sink.DiscordSink._record_sent = _die_once_posted  # type: ignore[method-assign]
elif AT == "edit":
    request_message.edit_on_route = _die_once_edited

if __name__ == "__main__":
    raise SystemExit(main([]))
