"""The key/value meta table (schema version 2)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Text

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table("meta", sa.Column("key", Text, primary_key=True), sa.Column("value", Text))
