"""A job's failure reason kept as a text (issue 17, texts as data).

Earlier versions stored the reason in English (`jobs.error`), and the bot matched it back to its
catalog text each time a member read it. Now the runner stores the text itself (`bot.core.texts.stored`:
its message id and parameters as JSON) and renders it in the reader's language. This revision turns every
English reason that matches a catalog text into that form once (`bot.core.legacy_texts`); a reason that
matches none (the image service's own words, which were stored as they came) is left as written and
reads as it is. No column changes: only values.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.core.legacy_texts import text_from_english
from bot.core.texts import STORED_PREFIX, stored

revision = "0012"
down_revision = "0011"

BATCH = 500


def upgrade() -> None:
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, error FROM jobs WHERE id > :after AND error IS NOT NULL AND error <> '' "
                "ORDER BY id LIMIT :batch"
            ),
            {"after": after, "batch": BATCH},
        ).all()
        if not rows:
            return
        for job_id, error in rows:
            after = job_id
            if str(error).startswith(STORED_PREFIX):
                continue  # already a stored text (written by this version)
            text = text_from_english(str(error))
            if text is not None:
                bind.execute(
                    sa.text("UPDATE jobs SET error = :error WHERE id = :id"),
                    {"error": stored(text), "id": job_id},
                )
