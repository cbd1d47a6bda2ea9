"""Durations as moderators type them: `30m`, `12h`, `7d`, `2w`, or combined like `1d12h`."""

from __future__ import annotations

import re

from bot.core.i18n import nt
from bot.core.texts import Text, msg

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_ALIASES = {
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "day": "d", "days": "d",
    "wk": "w", "wks": "w", "week": "w", "weeks": "w",
}  # fmt: skip
_PART = re.compile(r"(\d{1,6})\s*([a-z]+)")
MAX_SECONDS = 366 * 86_400
EXAMPLES = "`30m`, `12h`, `7d` or `2w`"


class DurationError(ValueError):
    """A duration that cannot be read; `text` says why, in the moderator's language (`str()` of it is
    the English, for the terminal)."""

    def __init__(self, text: Text) -> None:
        super().__init__(text)
        self.text = text


def parse_duration(text: str) -> int:
    """Seconds in a duration like `90m`, `1d12h` or `2 weeks`; raises DurationError."""
    cleaned = text.strip().lower()
    if not cleaned:
        raise DurationError(msg("the duration is empty; write it like {examples}", examples=EXAMPLES))
    position, total = 0, 0
    for match in _PART.finditer(cleaned):
        if cleaned[position : match.start()].strip(" ,"):
            break
        unit = _ALIASES.get(match.group(2), match.group(2))
        if unit not in UNITS:
            raise DurationError(
                msg(
                    "{unit} is not a unit I know; write it like {examples}",
                    unit=f"`{match.group(2)}`",
                    examples=EXAMPLES,
                )
            )
        total += int(match.group(1)) * UNITS[unit]
        position = match.end()
    if position == 0 or cleaned[position:].strip(" ,"):
        raise DurationError(
            msg("I could not read that duration; write it like {examples}", examples=EXAMPLES)
        )
    if total <= 0:
        raise DurationError(msg("the duration must be longer than zero"))
    if total > MAX_SECONDS:
        raise DurationError(msg("the longest duration is one year; leave it out for a ban until lifted"))
    return total


def describe_seconds(seconds: int, locale: object = None) -> str:
    """`90` → `1 min 30 s`, `86400` → `1 day`: for confirmations, in the reader's language."""
    if seconds <= 0:
        return nt(locale, "{count} s", "{count} s", 0)
    parts: list[str] = []
    for size, unit in ((604_800, _weeks), (86_400, _days), (3600, _hours), (60, _minutes), (1, _seconds)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(unit(locale, count))
    return " ".join(parts)


def _weeks(locale: object, n: int) -> str:
    return nt(locale, "{count} week", "{count} weeks", n)


def _days(locale: object, n: int) -> str:
    return nt(locale, "{count} day", "{count} days", n)


def _hours(locale: object, n: int) -> str:
    return nt(locale, "{count} h", "{count} h", n)


def _minutes(locale: object, n: int) -> str:
    return nt(locale, "{count} min", "{count} min", n)


def _seconds(locale: object, n: int) -> str:
    return nt(locale, "{count} s", "{count} s", n)
