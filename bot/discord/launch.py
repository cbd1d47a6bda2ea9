"""Logging the bot in and keeping it running until a stop signal: Discord's login errors as one line."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import discord

from bot.discord.client import ImagineBot, point_discord_at
from bot.ops.config import Settings
from bot.ops.preflight import preflight

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_bot(settings: Settings) -> int:
    store, gateway = await preflight(settings)
    if settings.discord_api_base:
        point_discord_at(settings.discord_api_base, gateway)
    bot = ImagineBot(settings, store=store)  # the bot owns the store from here and closes it as it stops
    assert settings.discord_token is not None
    loop = asyncio.get_running_loop()
    stopped_by: list[str] = []

    def stop(signum: signal.Signals) -> None:
        if not stopped_by:
            log.info("%s received: stopping (running jobs stay in the database)", signum.name)
        stopped_by.append(signum.name)
        loop.create_task(bot.close())  # noqa: RUF006 - bot.close() keeps its own task for re-entry

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        async with bot:
            await bot.start(settings.discord_token.reveal())
    except discord.LoginFailure:
        print(
            "DISCORD_TOKEN: Discord refused this token; reset it in the Developer Portal and try again",
            file=sys.stderr,
        )
        return 2
    except discord.PrivilegedIntentsRequired:  # pragma: no cover - the bot asks for none
        print("the bot asked for a privileged intent; this is a bug", file=sys.stderr)
        return 1
    except (discord.GatewayNotFound, discord.ConnectionClosed) as error:
        print(f"Discord: the gateway connection failed ({error})", file=sys.stderr)
        return 1
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        # `start` returns as soon as a stop signal's close has shut the gateway, and leaving `async
        # with` does not wait for the rest once the gateway is closed: wait here, or the session, the
        # store (its lease release and final checkpoint) and the endpoint are cancelled at exit.
        await bot.close()
    if stopped_by:
        log.info("stopped cleanly")
    return 0
