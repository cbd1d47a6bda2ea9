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


def _v3_usage_and_moderation(db: sqlite_utils.Database) -> None:
    """Usage log, per-guild policy, role and user limits, bans, prompt rules, and the admin log."""
    db["usage"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "guild_id": int,
            "channel_id": int,
            "user_id": int,
            "created_at": float,
            "prompt": str,
            "aspect_ratio": str,
            "ref_count": int,
            "outcome": str,  # refused | submitted | completed | failed | timed_out | cancelled
            "reason": str,  # why refused: quota, cooldown, banned, blocked_prompt, bad_input, ...
            "detail": str,  # e.g. the prompt rule that matched
            "counted": int,  # 1 while it counts against the member's quota
            "used_credit": int,
            "job_id": int,
            "task_id": str,
            "duration": float,
        },
        pk="id",
        not_null={"guild_id", "user_id", "created_at", "outcome"},
        defaults={"counted": 0, "used_credit": 0, "ref_count": 0},
    )
    usage = db["usage"]
    usage.create_index(["guild_id", "user_id", "created_at"], index_name="usage_user_time")  # type: ignore[union-attr]
    usage.create_index(["guild_id", "created_at"], index_name="usage_guild_time")  # type: ignore[union-attr]
    usage.create_index(["created_at"], index_name="usage_time")  # type: ignore[union-attr]
    db.execute("CREATE INDEX usage_running ON usage (guild_id, user_id) WHERE outcome = 'submitted'")
    db["guild_settings"].create(  # type: ignore[union-attr]
        {
            "guild_id": int,
            "default_quota": int,
            "timezone": str,
            "cooldown_seconds": int,
            "max_running": int,
            "daily_cap": int,
            "exempt_managers": int,
            "modlog_channel_id": int,
            "modlog_finished": int,
        },
        pk="guild_id",
    )
    db["role_quotas"].create(  # type: ignore[union-attr]
        {"guild_id": int, "role_id": int, "daily_limit": int}, pk=("guild_id", "role_id")
    )
    db["user_quotas"].create(  # type: ignore[union-attr]
        {"guild_id": int, "user_id": int, "daily_limit": int, "unlimited": int, "credits": int},
        pk=("guild_id", "user_id"),
        defaults={"unlimited": 0, "credits": 0},
    )
    db["bans"].create(  # type: ignore[union-attr]
        {
            "guild_id": int,
            "user_id": int,
            "reason": str,
            "banned_by": int,
            "created_at": float,
            "expires_at": float,
        },
        pk=("guild_id", "user_id"),
    )
    db["prompt_rules"].create(  # type: ignore[union-attr]
        {"id": int, "guild_id": int, "kind": str, "pattern": str, "added_by": int, "created_at": float},
        pk="id",
    )
    db["prompt_rules"].create_index(["guild_id"], index_name="prompt_rules_guild")  # type: ignore[union-attr]
    db["admin_log"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "guild_id": int,
            "actor_id": int,
            "action": str,
            "target": str,
            "details": str,
            "created_at": float,
        },
        pk="id",
    )
    db["admin_log"].create_index(["guild_id", "created_at"], index_name="admin_log_guild")  # type: ignore[union-attr]
    db["jobs"].add_column("usage_id", int)  # type: ignore[union-attr]


def _v4_living_messages(db: sqlite_utils.Database) -> None:
    """Where a delivered image lives (for Edit, Post again and /history), and the cancel refund rule."""
    jobs = db["jobs"]
    jobs.add_column("result_channel_id", int)  # type: ignore[union-attr]
    jobs.add_column("result_deleted_at", float)  # type: ignore[union-attr]
    jobs.add_column("cancelled_by", int)  # type: ignore[union-attr]
    db["guild_settings"].add_column("refund_cancelled", int)  # type: ignore[union-attr]
    db.execute(
        "CREATE INDEX jobs_history ON jobs (guild_id, user_id, delivered_at) WHERE status = 'delivered'"
    )


# Applied in order; a database at version N gets MIGRATIONS[N:].
MIGRATIONS: list[Migration] = [_v1_jobs, _v2_meta, _v3_usage_and_moderation, _v4_living_messages]
