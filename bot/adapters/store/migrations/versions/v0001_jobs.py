"""Jobs: everything needed to finish a job after a restart (the bot's schema version 1)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import ZERO, Count, Id, Text, Time

revision = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", Id, primary_key=True),
        sa.Column("source", Text, nullable=False),
        sa.Column("status", Text, nullable=False),
        sa.Column("prompt", Text, nullable=False),
        sa.Column("aspect_ratio", Text),
        sa.Column("reference_urls", Text),
        sa.Column("has_refs", Count, server_default=ZERO),
        sa.Column("guild_id", Id),
        sa.Column("channel_id", Id),
        sa.Column("user_id", Id),
        sa.Column("interaction_id", Id),
        sa.Column("application_id", Id),
        sa.Column("interaction_token", Text),
        sa.Column("token_expires_at", Time),
        sa.Column("message_id", Id),
        sa.Column("task_id", Text),
        sa.Column("trace_id", Text),
        sa.Column("api_status", Text),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("submitted_at", Time),
        sa.Column("finished_at", Time),
        sa.Column("delivered_at", Time),
        sa.Column("poll_count", Count, server_default=ZERO),
        sa.Column("poll_errors", Count, server_default=ZERO),
        sa.Column("next_poll_at", Time),
        sa.Column("error", Text),
        sa.Column("result_urls", Text),
        sa.Column("delivery", Text),
        sa.Column("result_message_id", Id),
    )
    op.create_index("jobs_due", "jobs", ["source", "status", "next_poll_at"])
    op.create_index("jobs_durations", "jobs", ["has_refs", "finished_at"])
    op.create_index("jobs_user", "jobs", ["guild_id", "user_id", "created_at"])
    op.create_index("jobs_task", "jobs", ["task_id"])
