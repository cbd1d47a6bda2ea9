"""The one case folding of unique names (style names), the same on SQLite and PostgreSQL."""

from __future__ import annotations

import unicodedata


def name_key(name: str) -> str:
    """The key a unique name is compared by, computed by the bot rather than by the database:
    SQLite's lower() folds only ASCII and PostgreSQL's follows the server's locale, so `ÉCLAIR` and
    `éclair` were one name on PostgreSQL and two on SQLite. Unicode's caseless match (NFKC, then full
    case folding, then NFKC) makes `Straße` and `STRASSE` one name too, on both."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
