"""Repair what earlier versions could leave half-written, and make room for delivery retries (schema
version 5).

Earlier versions wrote a job's end and its usage row in separate commits, so a crash in between left
the usage row 'submitted' for a finished job: it held a running slot for good and never got its
refund. Each such row now gets the job's outcome, with the refund rules of a normal ending: failed,
timed out and unknown are given back (with their credit); a cancel is given back if nothing had been
sent, a moderator cancelled, or the server refunds cancellations; completed counts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Count

revision = "0005"
down_revision = "0004"

# What a finished job's usage row should say. Jobs still queued, submitting or running keep 'submitted'.
_FINISHED_OUTCOMES = {
    "completed": "completed",
    "delivered": "completed",
    "failed": "failed",
    "unknown": "failed",
    "timed_out": "timed_out",
    "cancelled": "cancelled",
}


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT u.id, u.guild_id, u.user_id, u.counted, u.used_credit, j.status, j.finished_at,"
            " j.task_id, j.cancelled_by, COALESCE(g.refund_cancelled, 0)"
            " FROM usage u LEFT JOIN jobs j ON j.id = u.job_id"
            " LEFT JOIN guild_settings g ON g.guild_id = u.guild_id WHERE u.outcome = 'submitted'"
        )
    ).all()
    for row in rows:
        usage_id, guild_id, user_id, counted, used_credit, status, finished_at, task_id, by, refund_all = row
        if status is None:
            outcome = "failed"  # the job row is gone: nothing can be running
        elif status in _FINISHED_OUTCOMES:
            outcome = _FINISHED_OUTCOMES[status]
        else:
            continue
        if outcome == "completed":
            refund = False
        elif outcome == "cancelled":
            refund = task_id is None or (by is not None and by != user_id) or bool(refund_all)
        else:
            refund = True
        give_back = refund and bool(counted)
        bind.execute(
            sa.text(
                "UPDATE usage SET outcome = :outcome, duration = COALESCE(:finished - created_at, duration),"
                " counted = :counted, used_credit = :credit WHERE id = :id"
            ),
            {
                "outcome": outcome,
                "finished": finished_at,
                "counted": 0 if give_back else counted,
                "credit": 0 if give_back else used_credit,
                "id": usage_id,
            },
        )
        if give_back and used_credit:
            bind.execute(
                sa.text(
                    "UPDATE user_quotas SET credits = credits + 1 WHERE guild_id = :guild AND user_id = :user"
                ),
                {"guild": guild_id, "user": user_id},
            )
    # How often telling the requester failed: retried a few times, then given up.
    op.add_column("jobs", sa.Column("delivery_attempts", Count))
    # /history pages by job id on an index that holds exactly the listed rows.
    op.drop_index("jobs_history", table_name="jobs")
    where = sa.text("status = 'delivered' AND result_message_id IS NOT NULL")
    op.create_index(
        "jobs_history_posts",
        "jobs",
        ["guild_id", "user_id", "id"],
        sqlite_where=where,
        postgresql_where=where,
    )
