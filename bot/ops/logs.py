"""Logging set-up: text or JSON lines, secrets scrubbed and control characters escaped in every record.

Three things a log line must never do: show a secret (the API key, the bot token, an interaction token
inside one of discord.py's webhook URLs), span two lines because a value from outside (a task id, an
error text) carried a newline, or lose the job it is about. The filter below takes care of the first two
for every logger, discord.py's and aiohttp's included; the JSON formatter the third.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from bot.core.log_context import CONTEXT_FIELDS, current_context
from bot.core.redaction import redact

REDACTED = "[redacted]"

# Interaction tokens travel in URL paths (discord.py logs them at DEBUG, and in HTTPException texts):
# /webhooks/<application id>/<token>/... and /interactions/<interaction id>/<token>/callback.
_TOKEN_IN_PATH = re.compile(r"(/(?:webhooks|interactions)/\d+/)([A-Za-z0-9_\-.]{20,})")
# ... and in payloads (an INTERACTION_CREATE event, a job row) printed as JSON or as a Python dict.
_TOKEN_FIELD = re.compile(r"""(["'](?:interaction_)?token["']\s*:\s*["'])([^"']{20,})""")
# Everything below 0x20 except the tab, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u0085\u2028\u2029]")


def escape_controls(text: str) -> str:
    """Make a value from outside printable on one line: a newline becomes the two characters `\\n`."""

    def replace(match: re.Match[str]) -> str:
        char = match.group()
        return {"\n": "\\n", "\r": "\\r"}.get(
            char, f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
        )

    return _CONTROL.sub(replace, text)


class RedactSecrets(logging.Filter):
    """Replaces every known secret and every interaction token in a record's text with a marker, and
    escapes control characters in the message (a traceback keeps its own line breaks)."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 4]

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _TOKEN_IN_PATH.sub(lambda m: m.group(1) + REDACTED, text)
        text = redact(text)  # a database password in any of its forms (URL, query, key=value)
        return _TOKEN_FIELD.sub(lambda m: m.group(1) + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: keep the template rather than lose the line
            message = str(record.msg)
        clean = escape_controls(self.scrub(message))
        if clean != record.msg or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The ids bound to the work the record was logged in (`bot.core.log_context`), or passed with
    `extra={...}`; never read back out of the message text."""
    found = {k: v for k, v in current_context().items() if v is not None}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = value
    return {name: str(found[name]) for name in CONTEXT_FIELDS if name in found}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, known ids, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(context_of(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        # json.dumps escapes every control character, so a value can never break the line.
        return json.dumps(entry, ensure_ascii=False)


# discord.py logs every reconnect attempt with the whole traceback of the failed connection (~50
# lines, again and again through an outage). The attempt and its cause fit on one line.
_RECONNECT_LOGGERS = ("discord.client", "discord.shard")
_RECONNECT_MESSAGES = ("Attempting a reconnect", "Failed to connect for shard_id")


def reconnect_in_one_line(record: logging.LogRecord) -> bool:
    """A reconnect attempt as one line naming its cause, without the traceback."""
    cause = record.exc_info[1] if record.exc_info else None
    if (
        cause is not None
        and record.name in _RECONNECT_LOGGERS
        and str(record.msg).startswith(_RECONNECT_MESSAGES)
    ):
        text = str(cause).strip() or type(cause).__name__
        record.msg = f"{record.getMessage()} ({type(cause).__name__}: {text})"
        record.args = None
        record.exc_info, record.exc_text = None, None
    return True


def _not_about_voice(record: logging.LogRecord) -> bool:
    # The bot never joins a voice channel: discord.py's warnings about missing voice libraries are noise.
    return "voice will NOT be supported" not in str(record.msg)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def setup_logging(level: str, secrets: Sequence[str] = (), log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    # On the handler, not a logger: records of every logger (discord.py, aiohttp) pass through it.
    handler.addFilter(reconnect_in_one_line)  # before the redaction, which formats the traceback
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    handler.addFilter(_not_about_voice)
    # discord.py's gateway chatter is noise at INFO; warnings still come through.
    logging.getLogger("discord.gateway").setLevel(max(logging.getLevelName(level), logging.WARNING))
