"""Usage log, per-server policy, role and member limits, bans, prompt rules and the admin log (schema
version 3)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import ZERO, Count, Id, Text, Time

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", Id, primary_key=True),
        sa.Column("guild_id", Id, nullable=False),
        sa.Column("channel_id", Id),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("prompt", Text),
        sa.Column("aspect_ratio", Text),
        sa.Column("ref_count", Count, server_default=ZERO),
        sa.Column("outcome", Text, nullable=False),
        sa.Column("reason", Text),
        sa.Column("detail", Text),
        sa.Column("counted", Count, server_default=ZERO),
        sa.Column("used_credit", Count, server_default=ZERO),
        sa.Column("job_id", Id),
        sa.Column("task_id", Text),
        sa.Column("duration", Time),
    )
    op.create_index("usage_user_time", "usage", ["guild_id", "user_id", "created_at"])
    op.create_index("usage_guild_time", "usage", ["guild_id", "created_at"])
    op.create_index("usage_time", "usage", ["created_at"])
    _usage_running()
    op.create_table(
        "guild_settings",
        sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
        sa.Column("default_quota", Count),
        sa.Column("timezone", Text),
        sa.Column("cooldown_seconds", Count),
        sa.Column("max_running", Count),
        sa.Column("daily_cap", Count),
        sa.Column("exempt_managers", Count),
        sa.Column("modlog_channel_id", Id),
        sa.Column("modlog_finished", Count),
    )
    op.create_table(
        "role_quotas",
        sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
        sa.Column("role_id", Id, primary_key=True, autoincrement=False),
        sa.Column("daily_limit", Count),
    )
    op.create_table(
        "user_quotas",
        sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
        sa.Column("user_id", Id, primary_key=True, autoincrement=False),
        sa.Column("daily_limit", Count),
        sa.Column("unlimited", Count, server_default=ZERO),
        sa.Column("credits", Count, server_default=ZERO),
    )
    op.create_table(
        "bans",
        sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
        sa.Column("user_id", Id, primary_key=True, autoincrement=False),
        sa.Column("reason", Text),
        sa.Column("banned_by", Id),
        sa.Column("created_at", Time),
        sa.Column("expires_at", Time),
    )
    op.create_table(
        "prompt_rules",
        sa.Column("id", Id, primary_key=True),
        sa.Column("guild_id", Id),
        sa.Column("kind", Text),
        sa.Column("pattern", Text),
        sa.Column("added_by", Id),
        sa.Column("created_at", Time),
    )
    op.create_index("prompt_rules_guild", "prompt_rules", ["guild_id"])
    op.create_table(
        "admin_log",
        sa.Column("id", Id, primary_key=True),
        sa.Column("guild_id", Id),
        sa.Column("actor_id", Id),
        sa.Column("action", Text),
        sa.Column("target", Text),
        sa.Column("details", Text),
        sa.Column("created_at", Time),
    )
    op.create_index("admin_log_guild", "admin_log", ["guild_id", "created_at"])
    op.add_column("jobs", sa.Column("usage_id", Id))


def _usage_running() -> None:
    where = sa.text("outcome = 'submitted'")
    op.create_index(
        "usage_running", "usage", ["guild_id", "user_id"], sqlite_where=where, postgresql_where=where
    )
