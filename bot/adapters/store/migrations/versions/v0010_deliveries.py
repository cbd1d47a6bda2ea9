"""Each image's way to its requester, written before it is sent (the bot's SQLite schema version 10,
PostgreSQL's version 5): after a crash, a take-over or a refused record, the next process knows which
route to look on and never sends an image twice."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Count, Id, Text, Time

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("job_id", Id, primary_key=True, autoincrement=False),
        sa.Column("image_index", Count, primary_key=True, autoincrement=False),
        sa.Column("route", Text, nullable=False),
        sa.Column("state", Text, nullable=False),
        sa.Column("message_id", Id),
        sa.Column("channel_id", Id),
        sa.Column("updated_at", Time, nullable=False),
    )
