"""The operator's terminal commands for personal use (the app installed to people's accounts):
`ban`, `unban`, `bans`, and the personal section of `stats`. They need only the database."""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bot.adapters.store import Store, open_store
from bot.core import reports
from bot.core.policy.quotas import day_bounds
from bot.ops.config import Settings

_DURATION = re.compile(r"^(\d{1,6})([mhdw])$")
_UNIT = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
CONTEXT_NAMES = {
    "dm": "DMs with the bot",
    "private_channel": "group DMs",
    "user_install_guild": "servers without the bot",
}


def duration_arg(raw: str) -> float:
    """`30m`, `12h`, `7d`, `2w` as seconds."""
    match = _DURATION.match(raw.strip().lower())
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"a duration such as 30m, 12h, 7d or 2w (got {raw[:30]!r})")
    return int(match[1]) * _UNIT[match[2]]


def user_arg(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise argparse.ArgumentTypeError(f"a Discord user id, a number (got {raw[:30]!r})")
    return int(raw)


def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    ban = sub.add_parser(
        "ban", help="ban a person from personal use (DMs, group DMs, servers without the bot)"
    )
    ban.add_argument("user", type=user_arg, metavar="USER_ID")
    ban.add_argument("--reason", help="shown to the person when they are refused")
    ban.add_argument(
        "--for",
        dest="duration",
        type=duration_arg,
        metavar="TIME",
        help="e.g. 12h, 7d (default: until unbanned)",
    )
    ban.add_argument(
        "--replace",
        action="store_true",
        help="replace a ban in force even when it lasts longer (without it, the longer ban is kept"
        " and the command exits 1)",
    )
    unban = sub.add_parser("unban", help="lift a ban from personal use")
    unban.add_argument("user", type=user_arg, metavar="USER_ID")
    sub.add_parser("bans", help="list the bans from personal use in force")


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _until(expires_at: float | None) -> str:
    return f"until {_when(expires_at)}" if expires_at is not None else "until unbanned"


async def run_ban(
    settings: Settings, user_id: int, reason: str | None, duration: float | None, replace: bool = False
) -> int:
    store = await open_store(settings)
    now = time.time()
    expires = now + duration if duration else None
    reason = (reason or "").strip()[:300] or None
    kept_reason = False
    try:
        current = next((b for b in await store.personal_bans(now) if b.user_id == user_id), None)
        if current is not None and not replace:
            # A shorter ban over a longer one would quietly shorten it (and drop its reason).
            if current.expires_at is None or (expires is not None and current.expires_at > expires):
                why = f" ({current.reason})" if current.reason else ""
                print(
                    f"user {user_id} is already banned from personal use {_until(current.expires_at)}{why},"
                    f" longer than this ban; kept it. Pass --replace to set the new one instead",
                    file=sys.stderr,
                )
                return 1
            if reason is None and current.reason:
                reason, kept_reason = current.reason, True
        await store.ban_personal(user_id, reason=reason, expires_at=expires, now=now)
    finally:
        await store.close()
    print(
        f"user {user_id} is banned from personal use {_until(expires)}"
        + (f" (reason kept: {reason})" if kept_reason else "")
    )
    return 0


async def run_unban(settings: Settings, user_id: int) -> int:
    store = await open_store(settings)
    try:
        lifted = await store.unban_personal(user_id)
    finally:
        await store.close()
    print(f"user {user_id} may use the bot personally again" if lifted else f"user {user_id} was not banned")
    return 0


BANS_HEADER = ("USER ID", "SINCE", "UNTIL", "REASON")


async def run_bans(settings: Settings) -> int:
    store = await open_store(settings)
    try:
        bans = await store.personal_bans(time.time())
    finally:
        await store.close()
    if not bans:
        print("no bans from personal use")
        return 0
    rows = [BANS_HEADER] + [
        (
            str(ban.user_id),
            _when(ban.created_at),
            _when(ban.expires_at) if ban.expires_at is not None else "unbanned",
            ban.reason or "",
        )
        for ban in bans
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        print(f"{line}  {row[3]}".rstrip())
    return 0


async def personal_report(store: Store, days: int | None) -> str:
    """The `stats` section on personal use: its own quota, so its own numbers."""
    now = time.time()
    day_start, _ = day_bounds(now, "UTC")
    windows = []
    where: list[str] = []
    for label, since in reports.report_windows(now, day_start, (days,) if days else (7, 30)):
        report = await store.personal_stats(since)
        windows.append(reports.Window(label, report.stats))
        places = ", ".join(f"{CONTEXT_NAMES.get(k, k)} {n}" for k, n in sorted(report.by_context.items()))
        where.append(f"{label}: {report.people} people" + (f" · {places}" if places else ""))
    text = reports.stats_text(
        windows,
        title="Personal use (DMs, group DMs and servers without the bot)",
        timezone="UTC",
        mention=reports.plain_user,
        markdown=False,
    )
    return text + "\nWhere: " + " | ".join(where)
