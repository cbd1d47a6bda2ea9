"""Where a delivered image lives (for Edit, Post again and /history), and the cancel refund rule
(schema version 4)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Count, Id, Time

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("result_channel_id", Id))
    op.add_column("jobs", sa.Column("result_deleted_at", Time))
    op.add_column("jobs", sa.Column("cancelled_by", Id))
    op.add_column("guild_settings", sa.Column("refund_cancelled", Count))
    where = sa.text("status = 'delivered'")
    op.create_index(
        "jobs_history",
        "jobs",
        ["guild_id", "user_id", "delivered_at"],
        sqlite_where=where,
        postgresql_where=where,
    )
