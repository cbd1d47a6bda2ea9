"""The web gallery: a member's posted images newest first (index jobs_gallery_user), and the words of
their prompts (table prompt_terms, bot/core/prompt_words.py). Images posted before this revision get
their words from a backfill that starts at today's newest job id (meta key prompt_terms_backfill,
`gallery_repo.backfill_terms`, run by the web server)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Id, Text

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    where = sa.text("status = 'delivered'")
    op.create_index(
        "jobs_gallery_user", "jobs", ["user_id", "id"], sqlite_where=where, postgresql_where=where
    )
    op.create_table(
        "prompt_terms",
        sa.Column("user_id", Id, primary_key=True, autoincrement=False),
        sa.Column("term", Text, primary_key=True),
        sa.Column("job_id", Id, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO meta (key, value) SELECT 'prompt_terms_backfill', CAST(MAX(id) AS TEXT) FROM jobs"
        " HAVING MAX(id) IS NOT NULL"
    )
