"""Which process works on a job, and until when (schema version 6; PostgreSQL's version 1 began here)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Text, Time

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_owner", Text))
    op.add_column("jobs", sa.Column("leased_until", Time))
    # Its partial index jobs_lease_owner came with PostgreSQL's version 1 only: 0010 adds it everywhere.
