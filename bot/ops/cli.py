"""Command line: `python -m bot [run|check|web|imagine|animate|sandbox|stats|export|backup|migrate-db|
healthcheck]`, and the operator's bans from personal use: `ban`, `unban`, `bans`.

Exit codes: 0 ok, 1 failed, 2 bad configuration or bad arguments."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import NoReturn

import psycopg

from bot.adapters.store import Store, database_label, open_store
from bot.core import reports
from bot.core.image_contract import ASPECT_RATIOS
from bot.core.policy.quotas import day_bounds
from bot.core.redaction import database_error, redact
from bot.core.video_contract import VIDEO_ASPECT_RATIOS, VIDEO_DURATIONS, VIDEO_RESOLUTIONS
from bot.discord.launch import run_bot
from bot.ops import backup, personal_cli, terminal_animate, terminal_imagine
from bot.ops.config import ConfigError, Settings, load_settings
from bot.ops.health import probe
from bot.ops.logs import setup_logging
from bot.ops.migrate_db import run_migrate_db
from bot.ops.output_file import OutputRefused, database_files, writable_problem, write_output
from bot.ops.preflight import PreflightError
from bot.ops.terminal_animate import run_animate
from bot.ops.terminal_variations import run_imagine_variations
from sandbox import server as sandbox

log = logging.getLogger("bot")

# Commands that read only the database: they need neither the Discord token nor the API key.
DATABASE_ONLY = ("stats", "export", "backup", "healthcheck", "migrate-db", "ban", "unban", "bans", "web")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def version() -> str:
    try:
        return metadata.version("imagine-bot")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line (and exit 2), not a usage block the reader must scan."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _bounded(convert: Callable[[str], float], what: str, low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = convert(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} (got {raw[:30]!r})") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} (got {raw[:30]!r})")
        return value

    return parse


# The sandbox declares its own options (bot/sandbox.py); here they get bounds and help naming the default.
SANDBOX_OPTIONS: dict[str, tuple[Callable[[str], float] | None, str]] = {
    "host": (None, "address to listen on"),
    "port": (_bounded(int, "a port from 0 to 65535", 0, 65535), "port to listen on (0: any free port)"),
    "api_key": (None, "the key the bot must send"),
    "duration": (_bounded(float, "seconds, 0 or more", 0, 86_400), "seconds per task"),
    "duration_range": (_bounded(float, "seconds, 0 or more", 0, 86_400), "draw each task's duration"),
    "failure_rate": (_bounded(float, "a share from 0 to 1", 0, 1), "share of tasks that fail"),
    "rate_limit_rate": (_bounded(float, "a share from 0 to 1", 0, 1), "share of submits answered 429"),
    "result_shape": (None, "how a finished task lists its images"),
    "images_per_task": (_bounded(int, "a whole number from 1 to 10", 1, 10), "images per finished task"),
    "big_images": (None, "serve multi-megabyte images (upload limits, re-encoding)"),
    "seed": (_bounded(int, "a whole number", -(2**63), 2**63 - 1), "random seed (repeatable runs)"),
    "public_base_url": (None, "base of result URLs when behind a proxy"),
}


def _describe_sandbox_options(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:  # argparse offers no public way to revisit declared options
        bounds, text = SANDBOX_OPTIONS.get(action.dest, (None, ""))
        if bounds is not None and action.type in (int, float):
            action.type = bounds
        if action.option_strings and action.dest != "help":
            action.help = action.help or text or action.dest.replace("_", " ")
            # Once: options whose default is better said in words (a flag, "no outage") say it themselves.
            if "%(default)" not in action.help and "(default:" not in action.help:
                action.help += " (default: %(default)s)"


def program_name(argv0: str | None = None) -> str:
    """The name the operator ran: `imagine-bot` (the installed command) or `python -m bot`."""
    name = Path(argv0 if argv0 is not None else sys.argv[0]).name
    return name if name.startswith("imagine-bot") else "python -m bot"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=program_name(),
        description="imagine-bot: images for a Discord community (also installed as `imagine-bot`)",
    )
    parser.add_argument("--version", action="version", version=f"imagine-bot {version()}")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    sub.add_parser("run", help="run the Discord bot (the default)")
    sub.add_parser(
        "check",
        help="check the token, the API key, commands, permissions; print the invite link",
        description="Check the token, the API key, the commands and the permissions in every channel;"
        " print the invite links. Exit codes: 0 everything is in order, 1 something is broken (the"
        " PROBLEM lines), 2 the configuration (a setting missing or malformed: nothing was checked).",
    )
    sub.add_parser(
        "web", help="run the web gallery alone (PostgreSQL; with SQLite the bot runs it: WEB_PORT)"
    )

    imagine = sub.add_parser("imagine", help="make one image from the terminal, without Discord")
    imagine.add_argument("prompt")
    imagine.add_argument("--aspect", choices=ASPECT_RATIOS, help="aspect ratio")
    imagine.add_argument(
        "--ref",
        action="append",
        default=[],
        metavar="URL",
        help="reference image URL (up to 5); the image API downloads it, so not a file on this computer",
    )
    imagine.add_argument("--out", type=Path, metavar="FILE", help=terminal_imagine.OUT_HELP)
    imagine.add_argument("--force", action="store_true", help="replace an existing --out file")
    imagine.add_argument(
        "--count", type=int, choices=range(1, 5), default=1, metavar="N", help=terminal_imagine.COUNT_HELP
    )
    # Prompt variations (bot/ops/terminal_variations.py): a prompt with braces asks before it bills.
    imagine.add_argument(
        "--yes", action="store_true", help="make a prompt's variations ({red, blue}) without asking first"
    )

    animate = sub.add_parser("animate", help="make one short video from the terminal, without Discord")
    animate.add_argument("prompt", help="what should happen in the video (at most 1000 characters)")
    animate.add_argument(
        "--image",
        metavar="URL",
        help="an image to animate (an http(s) URL the API can reach): the video takes its size",
    )
    animate.add_argument("--duration", type=int, choices=VIDEO_DURATIONS, help="seconds (default 6)")
    animate.add_argument(
        "--resolution", choices=VIDEO_RESOLUTIONS, help="without --image only (default 720P)"
    )
    animate.add_argument("--aspect", choices=VIDEO_ASPECT_RATIOS, help="aspect ratio, without --image only")
    animate.add_argument("--out", type=Path, metavar="FILE", help=terminal_animate.OUT_HELP)
    animate.add_argument("--force", action="store_true", help="replace an existing --out file")

    sandbox_parser = sub.add_parser("sandbox", help="run the offline stand-in for the image API")
    sandbox.build_arg_parser(sandbox_parser)
    _describe_sandbox_options(sandbox_parser)

    personal_cli.add_parsers(sub)
    stats = sub.add_parser("stats", help="print the usage report (as /imagine-admin stats does)")
    stats.add_argument("--guild", type=_snowflake_arg, metavar="ID", help="one server (default: all servers)")
    stats.add_argument(
        "--days", type=_days_arg, metavar="N", help="report today and the last N days (default: 7 and 30)"
    )

    export = sub.add_parser("export", help="write a server's usage rows as CSV (as /imagine-admin export)")
    export.add_argument("--guild", type=_snowflake_arg, metavar="ID", required=True, help="the server id")
    export.add_argument("--from", dest="start", metavar="DATE", required=True, help="first day, 2025-01-31")
    export.add_argument("--to", dest="end", metavar="DATE", required=True, help="last day, included")
    export.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="where to write; an existing file is replaced, a symlink written through (default, or -:"
        " standard output)",
    )

    backup_parser = sub.add_parser("backup", help="copy the database consistently, even while the bot runs")
    backup_parser.add_argument("path", type=Path, help="the backup file to write")

    move = sub.add_parser("migrate-db", help="copy the SQLite database into PostgreSQL (stop the bot first)")
    move.add_argument("--to", dest="url", metavar="URL", help="postgresql://… (default: DATABASE_URL)")
    move.add_argument("--from", dest="source", type=Path, metavar="FILE", help="default: DATABASE_PATH")
    move.add_argument(
        "--replace", action="store_true", help="empty a target that already holds rows, then copy"
    )

    sub.add_parser("healthcheck", help="exit 0 if the running bot's /healthz says healthy (for Docker)")
    return parser


def _snowflake_arg(raw: str) -> int:
    if not raw.isdigit() or not 1 <= len(raw) <= 21:
        raise argparse.ArgumentTypeError(f"a server id is a number (got {raw[:30]!r})")
    return int(raw)


def _days_arg(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 3650:
        raise argparse.ArgumentTypeError(f"a number of days from 1 to 3650 (got {raw[:30]!r})")
    return int(raw)


async def _open_existing(settings: Settings) -> Store | None:
    if settings.database_url:
        try:
            return await open_store(settings)
        except (RuntimeError, psycopg.Error) as error:
            print(
                f"cannot read the database: {database_error(database_label(settings), str(error))}",
                file=sys.stderr,
            )
            return None
    path = settings.database_path
    if not await asyncio.to_thread(path.exists):
        print(
            f"no database at {path} (the bot creates it on its first start); set DATABASE_PATH",
            file=sys.stderr,
        )
        return None
    try:
        return await Store.open(path)
    except (RuntimeError, sqlite3.Error) as error:  # newer schema than this bot, or not a database
        print(f"cannot read the database at {path}: {error}", file=sys.stderr)
        return None


async def run_stats(settings: Settings, guild_id: int | None, days: int | None) -> int:
    """`python -m bot stats`: the moderators' report, on the terminal. Needs no Discord token."""
    store = await _open_existing(settings)
    if store is None:
        return 1
    try:
        timezone = (await store.settings.guild_policy(guild_id)).timezone if guild_id is not None else "UTC"
        now = time.time()
        day_start, _ = day_bounds(now, timezone)
        windows = [
            reports.Window(label, await store.usage.stats(guild_id, since))
            for label, since in reports.report_windows(now, day_start, (days,) if days else (7, 30))
        ]
        # Personal use has no server and its own quota: reported apart, in the all-servers report.
        personal = await personal_cli.personal_report(store, days) if guild_id is None else None
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
    if personal is not None:
        print("\n" + personal)
    return 0


async def run_export(settings: Settings, guild_id: int, start: str, end: str, out: Path | None) -> int:
    """`python -m bot export`: the CSV of `/imagine-admin export`, with no upload limit."""
    to_stdout = out is None or str(out) == "-"
    protected = database_files(None if settings.database_url else settings.database_path)
    if not to_stdout:
        assert out is not None
        problem = await asyncio.to_thread(writable_problem, out, protected=protected)
        if problem is not None:
            print(f"nothing exported: --out {problem}", file=sys.stderr)
            return 2
    store = await _open_existing(settings)
    if store is None:
        return 1
    try:
        policy = await store.settings.guild_policy(guild_id)
        try:
            begin, finish = reports.export_bounds(start, end, policy.timezone)
        except reports.ReportError as error:
            print(f"nothing exported: {str(error).replace('`', '')}", file=sys.stderr)
            return 2
        table = await reports.fill_export(
            store.usage, guild_id, begin, finish, reports.UsageCsv(sys.maxsize, max_rows=sys.maxsize)
        )
    finally:
        await store.close()
    if to_stdout:
        sys.stdout.buffer.write(table.data())
        sys.stdout.flush()
    else:
        assert out is not None
        try:
            await asyncio.to_thread(write_output, out, table.data(), protected=protected)
        except OutputRefused as refusal:  # the path changed since the check above
            print(f"nothing exported: --out {refusal}", file=sys.stderr)
            return 2
        except OSError as error:
            print(f"nothing exported: cannot write {out} ({error.strerror or error})", file=sys.stderr)
            return 1
    print(
        f"{table.rows} rows from {start} to {end} ({policy.timezone})"
        + ("" if to_stdout else f" written to {out}"),
        file=sys.stderr,
    )
    return 0


def _run_sandbox(args: argparse.Namespace) -> int:
    setup_logging("INFO")
    low_high = args.duration_range
    if low_high and low_high[0] > low_high[1]:
        print(f"{program_name()} sandbox: --duration-range LOW must not be above HIGH", file=sys.stderr)
        return 2
    try:
        config = sandbox.config_from_args(args)
    except ValueError as error:
        print(f"{program_name()} sandbox: {error}", file=sys.stderr)
        return 2

    async def serve() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await sandbox.serve_forever(args.host, args.port, config)

    try:
        asyncio.run(serve())
    except OSError as error:
        print(
            f"{program_name()} sandbox: cannot listen on {args.host}:{args.port} ({error.strerror or error})",
            file=sys.stderr,
        )
        return 2
    return 0


def web_alone_problem(settings: Settings) -> str | None:
    """Why the gallery cannot run as a process of its own with these settings, if it cannot."""
    if settings.web_port is None:
        return "set WEB_PORT (and WEB_SESSION_SECRET, DISCORD_CLIENT_ID, DISCORD_CLIENT_SECRET)"
    if settings.database_url is None:
        return (
            "with SQLite the bot is the database's only writer, so the gallery runs inside it:"
            " set WEB_PORT for `python -m bot` instead (or use PostgreSQL: DATABASE_URL)"
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"

    if command == "sandbox":
        return _run_sandbox(args)

    try:
        settings = load_settings(
            require_token=command in ("run", "check"), require_api_key=command not in DATABASE_ONLY
        )
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2

    if command == "healthcheck":
        if settings.metrics_port is None:
            print("METRICS_PORT is not set: the bot has no health endpoint to ask", file=sys.stderr)
            return 1
        healthy, text = probe(settings.metrics_host, settings.metrics_port)
        print(text, file=sys.stdout if healthy else sys.stderr)
        return 0 if healthy else 1
    if command == "migrate-db":
        url = args.url or (settings.database_url.reveal() if settings.database_url else "")
        if not url:
            print("migrate-db: say where to: --to postgresql://user:password@host/database", file=sys.stderr)
            return 2
        if not url.startswith(("postgresql://", "postgres://")):
            given = "--to" if args.url else "DATABASE_URL"
            print(
                f"migrate-db: {given} must be a postgresql:// URL (got {redact(url)[:80]!r}); migrate-db"
                " copies the SQLite database (--from, default DATABASE_PATH) into PostgreSQL",
                file=sys.stderr,
            )
            return 2
        return run_migrate_db(args.source or settings.database_path, url, args.replace)
    if command == "web":
        problem = web_alone_problem(settings)
        if problem:
            print(f"python -m bot web: {problem}", file=sys.stderr)
            return 2
    if command == "backup":
        if settings.database_url:
            print(
                "backup copies the SQLite file; with DATABASE_URL (PostgreSQL) use pg_dump instead,"
                ' e.g. pg_dump --format=custom --file=bot.dump "$DATABASE_URL"',
                file=sys.stderr,
            )
            return 2
        return backup.run_backup(settings.database_path, args.path)

    setup_logging(
        settings.log_level if command in ("run", "web") else "WARNING",
        settings.secrets(),
        settings.log_format,
    )
    try:
        if command == "imagine":
            return asyncio.run(
                run_imagine_variations(
                    settings,
                    args.prompt,
                    args.aspect,
                    args.ref,
                    args.out,
                    force=args.force,
                    count=args.count,
                    yes=args.yes,
                )
            )
        if command == "animate":
            return asyncio.run(
                run_animate(
                    settings,
                    args.prompt,
                    image=args.image,
                    duration=args.duration,
                    resolution=args.resolution,
                    aspect_ratio=args.aspect,
                    out=args.out,
                    force=args.force,
                )
            )
        if command == "stats":
            return asyncio.run(run_stats(settings, args.guild, args.days))
        if command == "ban":
            return asyncio.run(
                personal_cli.run_ban(settings, args.user, args.reason, args.duration, args.replace)
            )
        if command == "unban":
            return asyncio.run(personal_cli.run_unban(settings, args.user))
        if command == "bans":
            return asyncio.run(personal_cli.run_bans(settings))
        if command == "export":
            return asyncio.run(run_export(settings, args.guild, args.start, args.end, args.out))
        if command == "web":
            from bot.web.gallery_server import run_web  # noqa: PLC0415 - only this command needs it

            return asyncio.run(run_web(settings))
        if command == "check":
            from bot.discord.setup_check import run_check  # noqa: PLC0415 - only this command needs it

            return asyncio.run(run_check(settings))
        return asyncio.run(run_bot(settings))
    except PreflightError as error:
        print(str(error), file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        # A port in use, a directory that cannot be created: say which, without a traceback.
        where = getattr(error, "filename", None)
        print(f"error: {error.strerror or error}" + (f" ({where})" if where else ""), file=sys.stderr)
        return 1
    except (sqlite3.Error, RuntimeError) as error:
        # A database that is not SQLite, is locked, or was made by a newer bot.
        print(f"database {database_label(settings)}: {error}", file=sys.stderr)
        return 1
    except psycopg.Error as error:
        print(f"database {database_error(database_label(settings), str(error))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
