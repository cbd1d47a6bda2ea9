"""Server styles, members' own settings, and where a job's style and private delivery live (schema
version 8)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Count, Id, Text, Time

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "styles",
        sa.Column("id", Id, primary_key=True),
        sa.Column("guild_id", Id, nullable=False),
        sa.Column("name", Text, nullable=False),
        sa.Column("text", Text, nullable=False),
        sa.Column("created_by", Id),
        sa.Column("created_at", Time, nullable=False),
    )
    # Replaced in 0010 by a case folding that is the same on both backends.
    op.create_index("styles_name", "styles", ["guild_id", sa.text("lower(name)")], unique=True)
    op.create_table(
        "member_settings",
        sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
        sa.Column("user_id", Id, primary_key=True, autoincrement=False),
        sa.Column("aspect_ratio", Text),
        sa.Column("style", Text),
        sa.Column("delivery", Text),
        sa.Column("updated_at", Time),
    )
    op.add_column("usage", sa.Column("style", Text))
    op.add_column("jobs", sa.Column("style", Text))
    op.add_column("jobs", sa.Column("style_text", Text))
    op.add_column("jobs", sa.Column("deliver_to", Text))
    op.add_column("guild_settings", sa.Column("private_images", Count))
