"""The admin-log entry every server setting change writes, in the transaction of the change itself.
Its own module so every repository can import it (settings_repo sits above the jobs repository, which
the gallery's repository sits under)."""

from __future__ import annotations

import json
from typing import Any

from bot.adapters.store.interface import Tx


def log_admin_change(
    tx: Tx, guild_id: int, actor_id: int, action: str, target: str | None, details: dict[str, Any], now: float
) -> None:
    tx.insert(
        "admin_log",
        {
            "guild_id": guild_id,
            "actor_id": actor_id,
            "action": action,
            "target": target,
            "details": json.dumps(details, sort_keys=True, default=str),
            "created_at": now,
        },
    )
