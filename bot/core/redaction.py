"""Passwords taken out of database addresses and error texts, in every form libpq accepts.

A password can ride in a URL's user-info (`postgresql://bot:pw@host/db`), in a URL's query
(`?password=pw`), or in a libpq key=value string (`password=pw` or `password='p w'`), and psycopg
quotes any of them back in its errors. One function for the store, the operator commands and the
log filter, so that no path prints one of these forms in clear."""

from __future__ import annotations

import re

MASK = "***"

# user:password@ in a URL (the user part holds no ':', '/' or '@').
_USER_INFO = re.compile(r"(://[^:/@\s]*):[^@\s]*@")
# ?password=… or &password=… in a URL's query, up to the next parameter.
_QUERY = re.compile(r"([?&](?:password|passfile|sslpassword)=)[^&#\s'\"]*", re.IGNORECASE)
# password=… in a key=value string: quoted ('…' with \' escapes) or up to the next space.
_KEY_VALUE = re.compile(
    r"(?<![?&\w])((?:password|sslpassword)\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\"&]+)", re.IGNORECASE
)


def redact(text: str) -> str:
    """`text` with every password form above replaced by ***; the rest (host, user, database) kept."""
    text = _USER_INFO.sub(rf"\1:{MASK}@", text)
    text = _QUERY.sub(rf"\1{MASK}", text)
    return _KEY_VALUE.sub(rf"\1{MASK}", text)


def database_answer(text: str) -> str:
    """A database error as one line without a password: for a failed connection, what the server (or
    the system) answered, e.g. `the server answered: role "bot" does not exist` or `Connection refused`,
    without libpq's preamble naming the address (the caller names it, once) or its hint lines."""
    lines = [line.strip() for line in redact(text).strip().splitlines() if line.strip()]
    if not lines:
        return "no reason given"
    first = lines[0]
    if "FATAL:" in first or (len(lines) > 1 and lines[1].startswith("FATAL:")):
        said = first.split("FATAL:", 1)[1] if "FATAL:" in first else lines[1].split("FATAL:", 1)[1]
        return f"the server answered: {said.strip()}"
    if first.startswith("connection failed:") or "connection to server" in first:
        return first.rsplit("failed: ", 1)[-1].strip() or first
    return " ".join(lines)


def database_error(where: str, text: str) -> str:
    """One line for an operator: `where` (a label such as the redacted URL) once, then the answer."""
    answer = database_answer(text)
    return answer if where in answer else f"{where}: {answer}"
