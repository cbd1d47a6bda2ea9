"""Logging the bot in and keeping it running until a stop signal: Discord's login errors as one line,
and a stop that ends within STOP_DEADLINE whatever Discord or the database do."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading

import discord

from bot.discord.client import ImagineBot, point_discord_at
from bot.ops.config import Settings
from bot.ops.preflight import DISCORD_API, check_database, discord_gateway_url

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# From the stop signal to the process's exit, whatever happens: well within Docker's 10 s grace
# (after which it sends SIGKILL). The orderly stop (bot.close: release the leases, close the gateway,
# the session and the database) gets ORDERLY_STOP of it; what remains is for discord.py to unwind.
STOP_DEADLINE = 8.0
ORDERLY_STOP = 6.0


async def _preflight(settings: Settings) -> None:
    """The database, then Discord's reachability, before any login: one line for the first failure."""
    await check_database(settings.database_path, settings)
    api_base = settings.discord_api_base or DISCORD_API
    gateway = await discord_gateway_url(api_base)
    if settings.discord_api_base:
        point_discord_at(api_base, gateway)


async def _serve(bot: ImagineBot, token: str) -> None:
    async with bot:
        await bot.start(token)


def _exit_at_deadline() -> threading.Timer:
    """The last resort, on a thread of its own so that nothing on the event loop (a database call that
    never returns, a blocked executor) can hold it: the process ends at the deadline. Jobs lose
    nothing: their rows are in the database and their leases run out for the next start."""

    def exit_now() -> None:
        log.warning(
            "the stop did not finish within %g s; exiting now (running jobs stay in the database)",
            STOP_DEADLINE,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)

    timer = threading.Timer(STOP_DEADLINE, exit_now)
    timer.daemon = True
    timer.start()
    return timer


async def _stop(bot: ImagineBot, serving: asyncio.Task[None]) -> None:
    """The orderly stop, then whatever discord.py still waits for is cancelled: after close() it can
    sit in its reconnect back-off (tens of seconds) or a gateway connect (up to 60 s) while Discord
    is unreachable, and close() does not interrupt either."""
    try:
        async with asyncio.timeout(ORDERLY_STOP):
            await bot.close()
    except TimeoutError:
        log.warning("the orderly stop took more than %g s; stopping now", ORDERLY_STOP)
    except Exception:
        log.warning("the orderly stop failed; stopping now", exc_info=True)
    # Cancelled again if need be: after a timed-out close, leaving `async with bot` waits for that
    # close once more, and only a second cancel ends the wait.
    while not serving.done():
        serving.cancel()
        await asyncio.wait({serving}, timeout=0.5)


async def run_bot(settings: Settings) -> int:
    await _preflight(settings)
    bot = ImagineBot(settings)
    assert settings.discord_token is not None
    loop = asyncio.get_running_loop()
    serving = asyncio.create_task(_serve(bot, settings.discord_token.reveal()), name="bot")
    stopped_by: list[str] = []
    stopping: list[asyncio.Task[None]] = []
    deadline: list[threading.Timer] = []

    def stop(signum: signal.Signals) -> None:
        if not stopped_by:
            log.info("%s received: stopping (running jobs stay in the database)", signum.name)
            deadline.append(_exit_at_deadline())
            stopping.append(loop.create_task(_stop(bot, serving)))
        stopped_by.append(signum.name)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        await asyncio.wait({serving})
        if stopping:
            await asyncio.wait(stopping)
        if not serving.cancelled():  # only a stop cancels it
            serving.result()  # raises what the bot raised
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
        if stopped_by:  # the gateway closing under a stop is the stop
            log.info("stopped (%s)", error)
            return 0
        print(f"Discord: the gateway connection failed ({error})", file=sys.stderr)
        return 1
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        if not serving.done():
            serving.cancel()
    if stopped_by:
        log.info("stopped cleanly")
    return 0
