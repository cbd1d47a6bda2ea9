"""The bot's SQLite database: schema, migrations and every SQL statement of the bot.

The rest of the bot speaks to it in intents (`create_job`, `claim_due_jobs`, `admit`, ...), so nothing
outside this package assumes SQLite. All work runs on one dedicated thread that owns the only
connection: the event loop never blocks on the disk, and there is exactly one writer.
"""

from __future__ import annotations

from sqlite3 import Error as StoreError  # any database failure: busy, full, damaged, ...

from bot.store.base import StoreCorruptError, migrate
from bot.store.ops import OpsQueries
from bot.store.schema import MIGRATIONS
from bot.store.settings import AdminEntry, BanEntry, SettingsQueries
from bot.store.usage import EXPORT_COLUMNS, Stats, UsageSummary


class Store(OpsQueries, SettingsQueries):
    """Every intent the bot has for its database."""


__all__ = [
    "EXPORT_COLUMNS",
    "MIGRATIONS",
    "AdminEntry",
    "BanEntry",
    "Stats",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "UsageSummary",
    "migrate",
]
