"""Durations as moderators type them: `30m`, `12h`, `7d`, `2w`, or combined like `1d12h`."""

from __future__ import annotations

import re

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
    """A duration that cannot be read; the text says why, for the moderator."""


def parse_duration(text: str) -> int:
    """Seconds in a duration like `90m`, `1d12h` or `2 weeks`; raises DurationError."""
    cleaned = text.strip().lower()
    if not cleaned:
        raise DurationError(f"the duration is empty; write it like {EXAMPLES}")
    position, total = 0, 0
    for match in _PART.finditer(cleaned):
        if cleaned[position : match.start()].strip(" ,"):
            break
        unit = _ALIASES.get(match.group(2), match.group(2))
        if unit not in UNITS:
            raise DurationError(f"`{match.group(2)}` is not a unit I know; write it like {EXAMPLES}")
        total += int(match.group(1)) * UNITS[unit]
        position = match.end()
    if position == 0 or cleaned[position:].strip(" ,"):
        raise DurationError(f"I could not read that duration; write it like {EXAMPLES}")
    if total <= 0:
        raise DurationError("the duration must be longer than zero")
    if total > MAX_SECONDS:
        raise DurationError("the longest duration is one year; leave it out for a ban until lifted")
    return total


def describe_seconds(seconds: int) -> str:
    """`90` → `1 min 30 s`, `86400` → `1 day`: for confirmations."""
    if seconds <= 0:
        return "0 s"
    parts: list[str] = []
    for name, size in (("week", 604_800), ("day", 86_400), ("h", 3600), ("min", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            plural = "s" if count != 1 and name in {"week", "day"} else ""
            parts.append(f"{count} {name}{plural}")
    return " ".join(parts)
