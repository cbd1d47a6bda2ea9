"""What /usage and the moderator reports say, and the usage export as CSV. Pure functions over the
store's plain values: no Discord objects, no database, so every text is easy to test."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import available_timezones

from bot.core import messages
from bot.core.i18n import N_, t
from bot.core.policy.prompt_rules import PromptRule
from bot.core.policy.quotas import discord_time, zone
from bot.core.texts import Text, msg, plural_msg, render
from bot.core.usage_records import EXPORT_COLUMNS, BanEntry, Stats, UsageSummary

DISCORD_LIMIT = 2000
EXPORT_MAX_ROWS = 100_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A spreadsheet runs a cell that starts with one of these as a formula: a prompt must never do that.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Mention = Callable[[int], str]


class ReportError(ValueError):
    """Input to a report that cannot be used; `text` says why, in the moderator's language (`str()`
    of it is the English, for the terminal)."""

    def __init__(self, text: Text) -> None:
        super().__init__(text)
        self.text = text


def user_mention(user_id: int) -> str:
    return f"<@{user_id}>"


def plain_user(user_id: int) -> str:
    return f"user {user_id}"


def code(text: str) -> str:
    """Text shown as inline code, whatever it contains."""
    cleaned = " ".join(text.replace("`", "ˋ").split())
    return f"`{cleaned}`" if cleaned else "`(empty)`"


def clip(text: str, limit: int = DISCORD_LIMIT, locale: object = None) -> str:
    """Cut a message to Discord's limit at a line boundary, saying that it was cut (in `locale`)."""
    if len(text) <= limit:
        return text
    marker = "\n" + t(locale, "… (more not shown)")
    head = text[: limit - len(marker)]
    if "\n" in head:
        head = head.rsplit("\n", 1)[0]
    return head + marker


def limit_text(limit: int | None, locale: object = None) -> str:
    """A daily limit as a moderator reads it."""
    if limit is None:
        return t(locale, "unlimited")
    if limit == 0:
        return t(locale, "off (0)")
    return t(locale, "{count} a day", count=limit)


def optional_limit(limit: int | None, *, none: str = "none", locale: object = None) -> str:
    return none if limit is None else limit_text(limit, locale)


# -- /usage -------------------------------------------------------------------------------------------


def usage_text(
    summary: UsageSummary, *, subject: str | None = None, personal: bool = False, locale: object = None
) -> str:
    """What /usage shows: `subject` None means the reader themself, else a mention of the member.
    `personal`: the reader's personal use (DMs, group DMs, servers without the bot), not a server's.
    In the reader's language (`locale`, a Discord locale; None is English)."""
    own = subject is None
    title = (
        t(locale, "**Your image use in this server**")
        if own
        else t(locale, "**Image use of {who}**", who=subject)
    )
    if personal:
        title = t(locale, messages.PERSONAL_USAGE_HEADER)
    lines = [title]
    used, limit = summary.used_today, summary.limit
    if limit is None:
        today = t(locale, "Today: **{used}** (no daily limit)", used=used)
    elif limit == 0:
        if own:
            today = t(locale, "Today: **{used}** · image generation is off for you (limit 0)", used=used)
        else:
            today = t(locale, "Today: **{used}** · image generation is off for them (limit 0)", used=used)
    else:
        today = t(
            locale,
            "Today: **{used}** of {limit} ({left} left)",
            used=used,
            limit=limit,
            left=max(limit - used, 0),
        )
    lines.append(t(locale, "{today} · this month: **{month}**", today=today, month=summary.used_month))
    if summary.credits:
        lines.append(
            t(
                locale,
                "One-off credits: **{count}** (used once the daily limit is reached)",
                count=summary.credits,
            )
        )
    if summary.running:
        lines.append(t(locale, "Running now: **{count}**", count=summary.running))
    lines.append(
        t(
            locale,
            "The daily count resets {when} ({time}).",
            when=discord_time(summary.resets_at),
            time=discord_time(summary.resets_at, "f"),
        )
    )
    if summary.banned and personal:
        lines.append(messages.personal_banned_text(summary.banned_until, None).render(locale))
    elif summary.banned:
        if summary.banned_until is not None:
            until = t(
                locale,
                "until {time} ({when})",
                time=discord_time(summary.banned_until, "f"),
                when=discord_time(summary.banned_until),
            )
        else:
            until = t(locale, "until a moderator lifts the ban")
        if own:
            lines.append(t(locale, "⛔ You cannot use the image bot in this server {until}.", until=until))
        else:
            lines.append(t(locale, "⛔ They cannot use the image bot in this server {until}.", until=until))
    return "\n".join(lines)


# -- moderator lists ------------------------------------------------------------------------------------


def bans_text(bans: Sequence[BanEntry], mention: Mention = user_mention, locale: object = None) -> str:
    if not bans:
        return t(locale, "Nobody is banned from the image bot in this server.")
    lines = [t(locale, "**Bans in force ({count})**", count=len(bans))]
    for ban in bans:
        if ban.expires_at is not None:
            until = t(locale, "until {time}", time=discord_time(ban.expires_at, "f"))
        else:
            until = t(locale, "until lifted")
        by = t(locale, " · by {who}", who=mention(ban.banned_by)) if ban.banned_by else ""
        reason = f" · {code(ban.reason)}" if ban.reason else ""
        lines.append(f"• {mention(ban.user_id)} {until}{reason}{by}")
    return clip("\n".join(lines), locale=locale)


def rule_text(rule: PromptRule) -> str:
    return f"#{rule.id} {rule.kind} {code(rule.pattern)}"


def rules_text(rules: Sequence[PromptRule], locale: object = None) -> str:
    if not rules:
        return t(locale, "This server has no prompt rules. Add one with `/imagine-admin blocklist add`.")
    lines = [
        t(locale, "**Prompt rules ({count})**", count=len(rules)),
        *(f"• {rule_text(rule)}" for rule in rules),
    ]
    return clip("\n".join(lines), locale=locale)


# -- stats ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    label: Text | str  # TODAY, or a text rendered in the reader's language
    stats: Stats


TODAY = N_("Today")


def report_windows(
    now: float, day_start: float, days: Sequence[int] = (7, 30)
) -> list[tuple[Text | str, float]]:
    """The report's windows: today (in the guild's time zone) and the last N days. The labels are
    texts; `stats_text` shows them in the reader's language."""
    windows: list[tuple[Text | str, float]] = [(TODAY, day_start)]
    for n in days:
        windows.append((plural_msg("Last day", "Last {count} days", n), now - n * 86_400))
    return windows


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%".replace(".0%", "%")


def stats_text(
    windows: Sequence[Window],
    *,
    title: str,
    timezone: str = "UTC",
    mention: Mention = user_mention,
    markdown: bool = True,
    locale: object = None,
) -> str:
    """The moderator report: per window, generations, failures, refusals by reason, top users.
    In the reader's language (`locale`); None is English (the operator's `python -m bot stats`)."""

    def bold(text: str) -> str:
        return f"**{text}**" if markdown else text

    lines = [bold(title)]
    for window in windows:
        s = window.stats
        if window.label == TODAY:
            label = t(locale, "Today (since 00:00 {timezone})", timezone=timezone)
        else:
            label = render(locale, window.label)
        lines.append("")
        lines.append(bold(label))
        other = s.generations - s.completed - s.failed
        parts = [
            t(locale, "{count} completed", count=s.completed),
            t(locale, "{count} failed or timed out", count=s.failed),
        ]
        if other:
            parts.append(t(locale, "{count} running or cancelled", count=other))
        lines.append(
            t(
                locale,
                "Generations: {count} ({parts}) · failure rate {rate}",
                count=s.generations,
                parts=", ".join(parts),
                rate=_percent(s.failure_rate),
            )
        )
        refused = sum(s.refusals.values())
        if refused:
            ranked = sorted(s.refusals.items(), key=lambda item: (-item[1], item[0]))
            reasons = ", ".join(f"{reason} {count}" for reason, count in ranked)
            lines.append(t(locale, "Refused: {count} ({reasons})", count=refused, reasons=reasons))
        else:
            lines.append(t(locale, "Refused: {count}", count=0))
        if s.top_users:
            users = " · ".join(f"{mention(user)} {count}" for user, count in s.top_users)
            lines.append(t(locale, "Top users: {users}", users=users))
    return "\n".join(lines)


# -- export --------------------------------------------------------------------------------------------


def parse_day(text: str, what: str) -> date:
    cleaned = text.strip()
    if not _DATE.match(cleaned):
        got = code(cleaned[:20])
        if what == "start":
            raise ReportError(msg("the start date must look like 2025-01-31 (got {text})", text=got))
        raise ReportError(msg("the end date must look like 2025-01-31 (got {text})", text=got))
    try:
        return date.fromisoformat(cleaned)
    except ValueError:
        raise ReportError(msg("{text} is not a real date", text=code(cleaned))) from None


def export_bounds(start: str, end: str, timezone: str) -> tuple[float, float]:
    """Epoch bounds [start, end) of the inclusive local dates `start`..`end` in the guild's zone."""
    first, last = parse_day(start, "start"), parse_day(end, "end")
    if last < first:
        raise ReportError(
            msg(
                "the end date {end} is before the start date {start}",
                end=last.isoformat(),
                start=first.isoformat(),
            )
        )
    tz = zone(timezone)
    try:
        after = last + timedelta(days=1)
        begin = datetime.combine(first, datetime.min.time(), tz).timestamp()
        finish = datetime.combine(after, datetime.min.time(), tz).timestamp()
    except (OverflowError, ValueError):
        raise ReportError(msg("those dates are out of range")) from None
    return begin, finish


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column == "created_at":
        return iso_utc(float(value))
    # Every text cell, whatever its column (a style name, a prompt, an API's task id): a spreadsheet
    # would run a cell starting with one of these as a formula.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class UsageCsv:
    """Usage rows as CSV (columns EXPORT_COLUMNS, created_at in ISO-8601 UTC), kept under a byte
    budget such as the upload limit of the guild."""

    def __init__(self, max_bytes: int, max_rows: int = EXPORT_MAX_ROWS) -> None:
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        self.rows = 0
        self.full = False
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        self._writer.writerow(EXPORT_COLUMNS)
        self.size = len(self._buffer.getvalue().encode())

    def add(self, row: Sequence[Any]) -> bool:
        """Append one row; False (and `full`) once the row or byte budget would be exceeded."""
        if self.full or self.rows >= self.max_rows:
            self.full = True
            return False
        line = io.StringIO()
        csv.writer(line, lineterminator="\r\n").writerow(
            [_cell(column, value) for column, value in zip(EXPORT_COLUMNS, row, strict=True)]
        )
        text = line.getvalue()
        size = len(text.encode())
        if self.size + size > self.max_bytes:
            self.full = True
            return False
        self._buffer.write(text)
        self.size += size
        self.rows += 1
        return True

    def extend(self, rows: Iterable[Sequence[Any]]) -> bool:
        return all(self.add(row) for row in rows)

    def data(self) -> bytes:
        return self._buffer.getvalue().encode()


class UsageRows(Protocol):
    async def export(self, guild_id: int, start: float, end: float, limit: int) -> list[tuple[Any, ...]]: ...


async def fill_export(
    usage: UsageRows, guild_id: int, begin: float, finish: float, table: UsageCsv, chunk: int = 5000
) -> UsageCsv:
    """Page through the range oldest first (rows sharing the page's last instant are skipped when
    the next page starts at that instant), formatting off the event loop. Used by `/imagine-admin
    export` and `python -m bot export`."""
    id_at, time_at = EXPORT_COLUMNS.index("id"), EXPORT_COLUMNS.index("created_at")
    cursor = begin
    seen: set[int] = set()
    while not table.full:
        rows = await usage.export(guild_id, cursor, finish, chunk)
        fresh = [row for row in rows if row[id_at] not in seen]
        if not await asyncio.to_thread(table.extend, fresh) or len(rows) < chunk:
            break
        last = rows[-1][time_at]
        at_last = {row[id_at] for row in rows if row[time_at] == last}
        if last == cursor:
            seen |= at_last  # a whole page at one instant: read a bigger page from the same place
            chunk *= 2
        else:
            cursor, seen = last, at_last
    return table


def export_filename(guild_id: int, start: str, end: str) -> str:
    return f"usage-{guild_id}-{start.strip()}-to-{end.strip()}.csv"


def export_text(
    rows: int,
    start: str,
    end: str,
    timezone: str,
    *,
    capped: bool,
    cap_reason: str,
    locale: object = None,
) -> str:
    span = {"start": start.strip(), "end": end.strip(), "timezone": timezone}
    if rows == 0:
        return t(locale, "No usage rows from {start} to {end} ({timezone}).", **span)
    if rows == 1:
        text = t(
            locale, "1 usage row from {start} to {end} ({timezone}), oldest first; times are UTC.", **span
        )
    else:
        text = t(
            locale,
            "{count} usage rows from {start} to {end} ({timezone}), oldest first; times are UTC.",
            count=rows,
            **span,
        )
    if capped:
        stopped = t(
            locale,
            "⚠️ The export stopped at {count} rows ({reason}); export a shorter range for the rest.",
            count=rows,
            reason=cap_reason,
        )
        text += f" {stopped}"
    return text


# -- time zones ----------------------------------------------------------------------------------------


@functools.cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(name for name in available_timezones() if "/" in name or name == "UTC"))


def match_timezones(current: str, limit: int = 25) -> list[str]:
    """Autocomplete for time zones: names starting with what was typed first, then containing it."""
    typed = current.strip().lower().replace(" ", "_")
    if not typed:
        popular = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York",
                   "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo",
                   "Asia/Kolkata", "Asia/Shanghai", "Australia/Sydney"]  # fmt: skip
        return [name for name in popular if name in _zones()][:limit]
    ranked: list[tuple[int, str]] = []
    for name in _zones():
        lowered = name.lower()
        if lowered.startswith(typed):
            ranked.append((0, name))
        elif lowered.rsplit("/", 1)[-1].startswith(typed):
            ranked.append((1, name))  # the city part: "paris" finds Europe/Paris
        elif typed in lowered:
            ranked.append((2, name))
    return [name for _, name in sorted(ranked)][:limit]
