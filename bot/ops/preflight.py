"""Checks run before logging in, so a broken set-up ends with one line naming the part and the cause."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import aiohttp
import psycopg

from bot.adapters.store import DatabaseSettings, Store, database_label, open_store
from bot.core.redaction import database_error

DISCORD_API = "https://discord.com/api/v10"


class PreflightError(Exception):
    """One line for the operator, and the exit code (1: something is down or broken)."""

    def __init__(self, text: str, code: int = 1) -> None:
        super().__init__(text)
        self.code = code


async def check_database(path: Path, settings: DatabaseSettings | None = None) -> None:
    """Open (creating and migrating if need be) and close the database: the SQLite file at `path`,
    or the database `settings` name (PostgreSQL when DATABASE_URL is set)."""
    if settings is not None and settings.database_url:
        where = database_label(settings)
        try:
            store = await open_store(settings)
        except psycopg.Error as error:  # the message names the server, never the password
            raise PreflightError(f"database {database_error(where, str(error))}") from None
        except RuntimeError as error:  # a schema from a newer bot
            raise PreflightError(f"database {where}: {error}") from None
        await store.close()
        return
    try:
        store = await Store.open(path)
    except OSError as error:
        where = f" at {error.filename}" if error.filename and str(error.filename) != str(path) else ""
        cause = f"{error.strerror or error}{where}"
        raise PreflightError(f"database {path}: cannot create or open it ({cause})") from None
    except sqlite3.Error as error:
        raise PreflightError(f"database {path}: not usable ({error})") from None
    except RuntimeError as error:  # a schema from a newer bot
        raise PreflightError(f"database {path}: {error}") from None
    await store.close()


def describe_connection_error(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorDNSError | aiohttp.ClientConnectorError):
        cause = getattr(error, "os_error", None)
        number = getattr(cause, "errno", None)
        if isinstance(number, int) and number > 0:  # asyncio words ECONNREFUSED as "Connect call failed"
            return os.strerror(number)
        return str(getattr(cause, "strerror", None) or cause or error)
    if isinstance(error, TimeoutError):
        return "no answer within 10 s"
    return str(error) or type(error).__name__


async def discord_gateway_url(api_base: str = DISCORD_API, timeout: float = 10.0) -> str:
    """Ask Discord's REST API (no token needed) where the gateway is: proves Discord is reachable."""
    url = api_base.rstrip("/") + "/gateway"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url) as answer,
        ):
            if answer.status >= 500:
                raise PreflightError(
                    f"Discord: {url} answered {answer.status}; Discord may be down, try later"
                )
            body = await answer.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise PreflightError(
            f"Discord: cannot reach {url} ({describe_connection_error(error)}); check the network, DNS "
            "or proxy of this machine"
        ) from None
    except ValueError:
        raise PreflightError(f"Discord: {url} did not answer with JSON; is DISCORD_API_BASE right?") from None
    gateway = body.get("url") if isinstance(body, dict) else None
    if not isinstance(gateway, str) or not gateway.startswith(("ws://", "wss://")):
        raise PreflightError(f"Discord: {url} gave no gateway address; is DISCORD_API_BASE right?")
    return gateway
