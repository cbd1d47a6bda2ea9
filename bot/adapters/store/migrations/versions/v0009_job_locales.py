"""The requester's Discord locale and the server's (schema version 9; PostgreSQL's version 4)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Text

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("locale", Text))
    op.add_column("jobs", sa.Column("guild_locale", Text))
