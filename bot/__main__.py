"""Command line: `python -m bot [run|imagine|sandbox]`. Exit codes: 0 ok, 1 failed, 2 bad configuration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import discord

from bot import sandbox
from bot.api import ASPECT_RATIOS
from bot.app import ImagineBot
from bot.cli import run_imagine
from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging

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
    return parser


async def _run_bot(settings: Settings) -> int:
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
        settings = load_settings(require_token=command == "run")
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level if command == "run" else "WARNING", settings.secrets())

    try:
        if command == "imagine":
            return asyncio.run(run_imagine(settings, args.prompt, args.aspect, args.ref, args.out))
        return asyncio.run(_run_bot(settings))
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        # A database path that cannot be created, a port in use: say which, without a traceback.
        print(f"error: {error.strerror or error} ({getattr(error, 'filename', '') or ''})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
