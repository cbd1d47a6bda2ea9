"""The schema, as an ordered list of migrations. Never edit a released entry: append a new one, so an
existing database upgrades in place without losing rows."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


def _v1_jobs(db: sqlite_utils.Database) -> None:
    db["jobs"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "source": str,
            "status": str,
            "prompt": str,
            "aspect_ratio": str,
            "reference_urls": str,
            "has_refs": int,
            "guild_id": int,
            "channel_id": int,
            "user_id": int,
            "interaction_id": int,
            "application_id": int,
            "interaction_token": str,
            "token_expires_at": float,
            "message_id": int,
            "task_id": str,
            "trace_id": str,
            "api_status": str,
            "created_at": float,
            "submitted_at": float,
            "finished_at": float,
            "delivered_at": float,
            "poll_count": int,
            "poll_errors": int,
            "next_poll_at": float,
            "error": str,
            "result_urls": str,
            "delivery": str,
            "result_message_id": int,
        },
        pk="id",
        not_null={"source", "status", "prompt", "created_at"},
        defaults={"poll_count": 0, "poll_errors": 0, "has_refs": 0},
    )
    jobs = db["jobs"]
    jobs.create_index(["source", "status", "next_poll_at"], index_name="jobs_due")  # type: ignore[union-attr]
    jobs.create_index(["has_refs", "finished_at"], index_name="jobs_durations")  # type: ignore[union-attr]
    jobs.create_index(["guild_id", "user_id", "created_at"], index_name="jobs_user")  # type: ignore[union-attr]
    jobs.create_index(["task_id"], index_name="jobs_task")  # type: ignore[union-attr]


def _v2_meta(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")  # type: ignore[union-attr]


# Applied in order; a database at version N gets MIGRATIONS[N:].
MIGRATIONS: list[Migration] = [_v1_jobs, _v2_meta]
