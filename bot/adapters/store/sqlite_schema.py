"""The schema, as an ordered list of migrations. Never edit a released entry: append a new one, so an
existing database upgrades in place without losing rows."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


def _v1_jobs(db: sqlite_utils.Database) -> None:
    db["jobs"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "source": str,
            "status": str,
            "prompt": str,
            "aspect_ratio": str,
            "reference_urls": str,
            "has_refs": int,
            "guild_id": int,
            "channel_id": int,
            "user_id": int,
            "interaction_id": int,
            "application_id": int,
            "interaction_token": str,
            "token_expires_at": float,
            "message_id": int,
            "task_id": str,
            "trace_id": str,
            "api_status": str,
            "created_at": float,
            "submitted_at": float,
            "finished_at": float,
            "delivered_at": float,
            "poll_count": int,
            "poll_errors": int,
            "next_poll_at": float,
            "error": str,
            "result_urls": str,
            "delivery": str,
            "result_message_id": int,
        },
        pk="id",
        not_null={"source", "status", "prompt", "created_at"},
        defaults={"poll_count": 0, "poll_errors": 0, "has_refs": 0},
    )
    jobs = db["jobs"]
    jobs.create_index(["source", "status", "next_poll_at"], index_name="jobs_due")  # type: ignore[union-attr]
    jobs.create_index(["has_refs", "finished_at"], index_name="jobs_durations")  # type: ignore[union-attr]
    jobs.create_index(["guild_id", "user_id", "created_at"], index_name="jobs_user")  # type: ignore[union-attr]
    jobs.create_index(["task_id"], index_name="jobs_task")  # type: ignore[union-attr]


def _v2_meta(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")  # type: ignore[union-attr]


def _v3_usage_and_moderation(db: sqlite_utils.Database) -> None:
    """Usage log, per-guild policy, role and user limits, bans, prompt rules, and the admin log."""
    db["usage"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "guild_id": int,
            "channel_id": int,
            "user_id": int,
            "created_at": float,
            "prompt": str,
            "aspect_ratio": str,
            "ref_count": int,
            "outcome": str,  # refused | submitted | completed | failed | timed_out | cancelled
            "reason": str,  # why refused: quota, cooldown, banned, blocked_prompt, bad_input, ...
            "detail": str,  # e.g. the prompt rule that matched
            "counted": int,  # 1 while it counts against the member's quota
            "used_credit": int,
            "job_id": int,
            "task_id": str,
            "duration": float,
        },
        pk="id",
        not_null={"guild_id", "user_id", "created_at", "outcome"},
        defaults={"counted": 0, "used_credit": 0, "ref_count": 0},
    )
    usage = db["usage"]
    usage.create_index(["guild_id", "user_id", "created_at"], index_name="usage_user_time")  # type: ignore[union-attr]
    usage.create_index(["guild_id", "created_at"], index_name="usage_guild_time")  # type: ignore[union-attr]
    usage.create_index(["created_at"], index_name="usage_time")  # type: ignore[union-attr]
    db.execute("CREATE INDEX usage_running ON usage (guild_id, user_id) WHERE outcome = 'submitted'")
    db["guild_settings"].create(  # type: ignore[union-attr]
        {
            "guild_id": int,
            "default_quota": int,
            "timezone": str,
            "cooldown_seconds": int,
            "max_running": int,
            "daily_cap": int,
            "exempt_managers": int,
            "modlog_channel_id": int,
            "modlog_finished": int,
        },
        pk="guild_id",
    )
    db["role_quotas"].create(  # type: ignore[union-attr]
        {"guild_id": int, "role_id": int, "daily_limit": int}, pk=("guild_id", "role_id")
    )
    db["user_quotas"].create(  # type: ignore[union-attr]
        {"guild_id": int, "user_id": int, "daily_limit": int, "unlimited": int, "credits": int},
        pk=("guild_id", "user_id"),
        defaults={"unlimited": 0, "credits": 0},
    )
    db["bans"].create(  # type: ignore[union-attr]
        {
            "guild_id": int,
            "user_id": int,
            "reason": str,
            "banned_by": int,
            "created_at": float,
            "expires_at": float,
        },
        pk=("guild_id", "user_id"),
    )
    db["prompt_rules"].create(  # type: ignore[union-attr]
        {"id": int, "guild_id": int, "kind": str, "pattern": str, "added_by": int, "created_at": float},
        pk="id",
    )
    db["prompt_rules"].create_index(["guild_id"], index_name="prompt_rules_guild")  # type: ignore[union-attr]
    db["admin_log"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "guild_id": int,
            "actor_id": int,
            "action": str,
            "target": str,
            "details": str,
            "created_at": float,
        },
        pk="id",
    )
    db["admin_log"].create_index(["guild_id", "created_at"], index_name="admin_log_guild")  # type: ignore[union-attr]
    db["jobs"].add_column("usage_id", int)  # type: ignore[union-attr]


def _v4_living_messages(db: sqlite_utils.Database) -> None:
    """Where a delivered image lives (for Edit, Post again and /history), and the cancel refund rule."""
    jobs = db["jobs"]
    jobs.add_column("result_channel_id", int)  # type: ignore[union-attr]
    jobs.add_column("result_deleted_at", float)  # type: ignore[union-attr]
    jobs.add_column("cancelled_by", int)  # type: ignore[union-attr]
    db["guild_settings"].add_column("refund_cancelled", int)  # type: ignore[union-attr]
    db.execute(
        "CREATE INDEX jobs_history ON jobs (guild_id, user_id, delivered_at) WHERE status = 'delivered'"
    )


# What a finished job's usage row should say. Jobs still queued, submitting or running keep 'submitted'.
_FINISHED_OUTCOMES = {
    "completed": "completed",
    "delivered": "completed",
    "failed": "failed",
    "unknown": "failed",
    "timed_out": "timed_out",
    "cancelled": "cancelled",
}


def _v5_repair_and_delivery(db: sqlite_utils.Database) -> None:
    """Repair what earlier versions could leave half-written, and make room for delivery retries.

    Earlier versions wrote a job's end and its usage row in separate commits, so a crash in between
    left the usage row 'submitted' for a finished job: it held a running slot for good and never got
    its refund. Each such row now gets the job's outcome, with the refund rules of a normal ending:
    failed, timed out and unknown are given back (with their credit); a cancel is given back if
    nothing had been sent, a moderator cancelled, or the server refunds cancellations; completed counts.
    """
    rows = db.execute(
        "SELECT u.id, u.guild_id, u.user_id, u.counted, u.used_credit, j.status, j.finished_at,"
        " j.task_id, j.cancelled_by, COALESCE(g.refund_cancelled, 0)"
        " FROM usage u LEFT JOIN jobs j ON j.id = u.job_id"
        " LEFT JOIN guild_settings g ON g.guild_id = u.guild_id WHERE u.outcome = 'submitted'"
    ).fetchall()
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
        db.execute(
            "UPDATE usage SET outcome = ?, duration = COALESCE(? - created_at, duration), counted = ?,"
            " used_credit = ? WHERE id = ?",
            [outcome, finished_at, 0 if give_back else counted, 0 if give_back else used_credit, usage_id],
        )
        if give_back and used_credit:
            db.execute(
                "UPDATE user_quotas SET credits = credits + 1 WHERE guild_id = ? AND user_id = ?",
                [guild_id, user_id],
            )
    # How often telling the requester failed: a job whose outcome could not be told is retried a few
    # times, then given up.
    db["jobs"].add_column("delivery_attempts", int)  # type: ignore[union-attr]
    # /history pages by job id on an index that holds exactly the listed rows: no OFFSET scan, and the
    # count never touches the table.
    db.execute("DROP INDEX IF EXISTS jobs_history")
    db.execute(
        "CREATE INDEX jobs_history_posts ON jobs (guild_id, user_id, id)"
        " WHERE status = 'delivered' AND result_message_id IS NOT NULL"
    )


def _v6_leases(db: sqlite_utils.Database) -> None:
    """Which process works on a job, and until when: several processes may share one database
    (PostgreSQL), and a job leased by a live process is not taken by another."""
    jobs = db["jobs"]
    jobs.add_column("lease_owner", str)  # type: ignore[union-attr]
    jobs.add_column("leased_until", float)  # type: ignore[union-attr]


def _v7_personal_use(db: sqlite_utils.Database) -> None:
    """Personal use (the app installed to a person's account, used in DMs, group DMs and servers the bot
    is not in): usage rows with no server and the context they came from, a job's context and its
    interaction follow-up count, and the operator's bans from personal use."""
    # guild_id loses NOT NULL: personal use belongs to no server. transform() rebuilds the table and
    # recreates its indexes from their stored SQL, so the partial usage_running index keeps its WHERE.
    db["usage"].transform(not_null={"guild_id": False})  # type: ignore[union-attr]
    db["usage"].add_column("context", str)  # type: ignore[union-attr]
    jobs = db["jobs"]
    jobs.add_column("context", str)  # type: ignore[union-attr]
    jobs.add_column("place_guild_id", int)  # type: ignore[union-attr]
    jobs.add_column("followups_used", int)  # type: ignore[union-attr]
    db["personal_bans"].create(  # type: ignore[union-attr]
        {"user_id": int, "reason": str, "created_at": float, "expires_at": float}, pk="user_id"
    )


def _v8_styles_and_personal_settings(db: sqlite_utils.Database) -> None:
    """Server styles, members' own settings, and where a job's style and private delivery live."""
    db["styles"].create(  # type: ignore[union-attr]
        {"id": int, "guild_id": int, "name": str, "text": str, "created_by": int, "created_at": float},
        pk="id",
        not_null={"guild_id", "name", "text", "created_at"},
    )
    # A name is one style whatever its case: "Anime" and "anime" cannot both exist.
    db.execute("CREATE UNIQUE INDEX styles_name ON styles (guild_id, lower(name))")
    db["member_settings"].create(  # type: ignore[union-attr]
        {
            "guild_id": int,
            "user_id": int,
            "aspect_ratio": str,
            "style": str,
            "delivery": str,
            "updated_at": float,
        },
        pk=("guild_id", "user_id"),
    )
    db["usage"].add_column("style", str)  # type: ignore[union-attr]
    jobs = db["jobs"]
    jobs.add_column("style", str)  # type: ignore[union-attr]
    jobs.add_column("style_text", str)  # type: ignore[union-attr]
    jobs.add_column("deliver_to", str)  # type: ignore[union-attr]
    db["guild_settings"].add_column("private_images", int)  # type: ignore[union-attr]


def _v9_job_locales(db: sqlite_utils.Database) -> None:
    """The requester's Discord locale and the server's: messages the sink sends later (status edits,
    the image post, failures, DMs) are written in the language of whoever reads them."""
    jobs = db["jobs"]
    jobs.add_column("locale", str)  # type: ignore[union-attr]
    jobs.add_column("guild_locale", str)  # type: ignore[union-attr]


def _v10_deliveries(db: sqlite_utils.Database) -> None:
    """Each image's way to its requester, written before it is sent: after a crash, a take-over or a
    refused record, the next process knows which route to look on and never sends an image twice."""
    db.execute(
        "CREATE TABLE deliveries ("
        " job_id INTEGER NOT NULL, image_index INTEGER NOT NULL, route TEXT NOT NULL, state TEXT NOT NULL,"
        " message_id INTEGER, channel_id INTEGER, updated_at REAL NOT NULL,"
        " PRIMARY KEY (job_id, image_index))"
    )


def _v11_gallery(db: sqlite_utils.Database) -> None:
    """The web gallery: a member's posted images newest first, and the words of their prompts
    (bot/core/prompt_words.py). Images posted before this version get their words from a backfill
    that starts at the newest job id of today (gallery_repo.backfill_terms)."""
    db.execute("CREATE INDEX jobs_gallery_user ON jobs (user_id, id) WHERE status = 'delivered'")
    db.execute(
        "CREATE TABLE prompt_terms (user_id INTEGER NOT NULL, term TEXT NOT NULL, job_id INTEGER NOT NULL,"
        " PRIMARY KEY (user_id, term, job_id)) WITHOUT ROWID"
    )
    db.execute(
        "INSERT INTO meta (key, value) SELECT 'prompt_terms_backfill', CAST(MAX(id) AS TEXT) FROM jobs"
        " HAVING MAX(id) IS NOT NULL"
    )


# Applied in order; a database at version N gets MIGRATIONS[N:].
MIGRATIONS: list[Migration] = [
    _v1_jobs,
    _v2_meta,
    _v3_usage_and_moderation,
    _v4_living_messages,
    _v5_repair_and_delivery,
    _v6_leases,
    _v7_personal_use,
    _v8_styles_and_personal_settings,
    _v9_job_locales,
    _v10_deliveries,
    _v11_gallery,
]
