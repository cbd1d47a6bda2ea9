"""Command line: `python -m bot [run|imagine|sandbox|stats]`.

Exit codes: 0 ok, 1 failed, 2 bad configuration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import discord

from bot import reports, sandbox
from bot.api import ASPECT_RATIOS
from bot.app import ImagineBot
from bot.cli import run_imagine
from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging
from bot.quotas import day_bounds
from bot.store import Store

log = logging.getLogger("bot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="imagine-bot: images for a Discord community"
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the Discord bot (the default)")

    imagine = sub.add_parser("imagine", help="make one image from the terminal, without Discord")
    imagine.add_argument("prompt")
    imagine.add_argument("--aspect", choices=ASPECT_RATIOS, help="aspect ratio")
    imagine.add_argument(
        "--ref", action="append", default=[], metavar="URL", help="reference image URL (up to 5)"
    )
    imagine.add_argument("--out", type=Path, default=Path("out.png"), help="where to write the image")

    sandbox.build_arg_parser(sub.add_parser("sandbox", help="run the offline stand-in for the image API"))

    stats = sub.add_parser("stats", help="print the usage report (as /imagine-admin stats does)")
    stats.add_argument("--guild", type=_snowflake_arg, metavar="ID", help="one server (default: all servers)")
    stats.add_argument(
        "--days", type=_days_arg, metavar="N", help="report today and the last N days (default: 7 and 30)"
    )
    return parser


def _snowflake_arg(raw: str) -> int:
    if not raw.isdigit() or not 1 <= len(raw) <= 21:
        raise argparse.ArgumentTypeError(f"a server id is a number (got {raw[:30]!r})")
    return int(raw)


def _days_arg(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 3650:
        raise argparse.ArgumentTypeError(f"a number of days from 1 to 3650 (got {raw[:30]!r})")
    return int(raw)


async def run_stats(settings: Settings, guild_id: int | None, days: int | None) -> int:
    """`python -m bot stats`: the moderators' report, on the terminal. Needs no Discord token."""
    path = settings.database_path
    if not path.exists():
        print(
            f"no database at {path} (the bot creates it on its first start); set DATABASE_PATH",
            file=sys.stderr,
        )
        return 1
    try:
        store = await Store.open(path)
    except (RuntimeError, sqlite3.Error) as error:  # newer schema than this bot, or not a database
        print(f"cannot read the database at {path}: {error}", file=sys.stderr)
        return 1
    try:
        timezone = (await store.guild_policy(guild_id)).timezone if guild_id is not None else "UTC"
        now = time.time()
        day_start, _ = day_bounds(now, timezone)
        windows = [
            reports.Window(label, await store.stats(guild_id, since))
            for label, since in reports.report_windows(now, day_start, (days,) if days else (7, 30))
        ]
    finally:
        await store.close()
    where = f"server {guild_id}" if guild_id is not None else "all servers"
    print(
        reports.stats_text(
            windows,
            title=f"Image bot report for {where}",
            timezone=timezone,
            mention=reports.plain_user,
            markdown=False,
        )
    )
    return 0


async def _run_bot(settings: Settings) -> int:
    # Before anything talks to Discord: a damaged database stops the bot with one clear line (raised as
    # StoreCorruptError, reported by main), not half-way through the start-up.
    await (await Store.open(settings.database_path)).close()
    bot = ImagineBot(settings)
    assert settings.discord_token is not None
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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"

    if command == "sandbox":
        setup_logging("INFO")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(sandbox.serve_forever(args.host, args.port, sandbox.config_from_args(args)))
        return 0

    try:
        # The report only reads the database: it needs neither the token nor the API key.
        settings = load_settings(require_token=command == "run", require_api_key=command != "stats")
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level if command == "run" else "WARNING", settings.secrets())

    try:
        if command == "imagine":
            return asyncio.run(run_imagine(settings, args.prompt, args.aspect, args.ref, args.out))
        if command == "stats":
            return asyncio.run(run_stats(settings, args.guild, args.days))
        return asyncio.run(_run_bot(settings))
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        # A database path that cannot be created, a port in use: say which, without a traceback.
        print(f"error: {error.strerror or error} ({getattr(error, 'filename', '') or ''})", file=sys.stderr)
        return 1
    except (sqlite3.Error, RuntimeError) as error:
        # A database that is not SQLite, is locked, or was made by a newer bot.
        print(f"database error ({settings.database_path}): {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
