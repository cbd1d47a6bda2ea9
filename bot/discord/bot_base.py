"""What the Discord side uses of the bot: its settings, clock, session, store, runner and mod-log,
declared on a base class apart from the bot class (bot/discord/client.py).

The views, requests, menus and commands that the bot class loads type their interactions with this base
(`discord.Interaction[ImagineBotBase]`), so none of them imports the bot class back: there is no import
circle, not even one for type checking. `tests/test_layout.py` checks that.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp
from discord.ext import commands

from bot.adapters.store import Store
from bot.core.clock import Clock
from bot.core.runner import JobRunner
from bot.ops.config import Settings


class ModLog(Protocol):
    """The sink's mod-log poster (bot/discord/sink.py), which the admin commands post changes with."""

    async def modlog(
        self,
        guild_id: int | None,
        text: str,
        *,
        throttle: tuple[object, ...] | None = None,
        channel_id: int | None = None,
    ) -> None: ...


class ImagineBotBase(commands.AutoShardedBot):
    """The attributes commands and buttons read; the bot class sets them up (`setup_hook`)."""

    settings: Settings
    clock: Clock
    session: aiohttp.ClientSession
    store: Store
    runner: JobRunner
    sink: ModLog
    stopping: bool  # True once a stop began: new work is turned away
