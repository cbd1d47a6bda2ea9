"""Personal use: usage rows with no server and the context they came from, a job's context and its
interaction follow-up count, and the operator's bans from personal use (schema version 7)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Count, Id, Text, Time

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    # usage.guild_id loses NOT NULL: SQLite rebuilds the table for that (batch mode). The partial index
    # is dropped and made again around it, so its WHERE survives the copy.
    op.drop_index("usage_running", table_name="usage")
    with op.batch_alter_table("usage") as batch:
        batch.alter_column("guild_id", existing_type=Id, nullable=True)
    where = sa.text("outcome = 'submitted'")
    op.create_index(
        "usage_running", "usage", ["guild_id", "user_id"], sqlite_where=where, postgresql_where=where
    )
    op.add_column("usage", sa.Column("context", Text))
    op.add_column("jobs", sa.Column("context", Text))
    op.add_column("jobs", sa.Column("place_guild_id", Id))
    op.add_column("jobs", sa.Column("followups_used", Count))
    op.create_table(
        "personal_bans",
        sa.Column("user_id", Id, primary_key=True, autoincrement=False),
        sa.Column("reason", Text),
        sa.Column("created_at", Time),
        sa.Column("expires_at", Time),
    )
