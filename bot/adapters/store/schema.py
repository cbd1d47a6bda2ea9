"""The one definition of the bot's tables, indexes and constraints, for SQLite and PostgreSQL alike.

The migration chain (`migrations/versions/`) builds exactly this on both backends; a test compares
the migrated databases with it (Alembic's autogenerate comparison) and with each other, column by
column and index by index. Change it only together with a new revision at the end of the chain.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.adapters.store.folding import name_key

# Row ids and Discord snowflakes need 64 bits on PostgreSQL. On SQLite a table's INTEGER PRIMARY KEY is
# its rowid (64 bits, assigned on insert) only when declared exactly INTEGER.
Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Unix times in seconds, with fractions.
Time: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")
# Fractional settings (e.g. images per second of video).
Rate: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")
Count = sa.Integer()
Text = sa.Text()
ZERO = sa.text("0")

metadata = sa.MetaData()

__all__ = ["TABLES", "metadata", "name_key"]


jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("source", Text, nullable=False),
    sa.Column("status", Text, nullable=False),
    sa.Column("prompt", Text, nullable=False),
    sa.Column("aspect_ratio", Text),
    sa.Column("reference_urls", Text),
    sa.Column("has_refs", Count, server_default=ZERO),
    sa.Column("guild_id", Id),
    sa.Column("channel_id", Id),
    sa.Column("user_id", Id),
    sa.Column("interaction_id", Id),
    sa.Column("application_id", Id),
    sa.Column("interaction_token", Text),
    sa.Column("token_expires_at", Time),
    sa.Column("message_id", Id),
    sa.Column("task_id", Text),
    sa.Column("trace_id", Text),
    sa.Column("api_status", Text),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("submitted_at", Time),
    sa.Column("finished_at", Time),
    sa.Column("delivered_at", Time),
    sa.Column("poll_count", Count, server_default=ZERO),
    sa.Column("poll_errors", Count, server_default=ZERO),
    sa.Column("next_poll_at", Time),
    sa.Column("error", Text),
    sa.Column("result_urls", Text),
    sa.Column("delivery", Text),
    sa.Column("result_message_id", Id),
    sa.Column("usage_id", Id),
    sa.Column("result_channel_id", Id),
    sa.Column("result_deleted_at", Time),
    sa.Column("cancelled_by", Id),
    sa.Column("delivery_attempts", Count),
    sa.Column("lease_owner", Text),
    sa.Column("leased_until", Time),
    sa.Column("context", Text),
    sa.Column("place_guild_id", Id),
    sa.Column("followups_used", Count),
    sa.Column("style", Text),
    sa.Column("style_text", Text),
    sa.Column("deliver_to", Text),
    sa.Column("locale", Text),
    sa.Column("guild_locale", Text),
    # A request of several tasks: its jobs share request_id (its first job's id; NULL before
    # revision 0014: a request of its own) at request_index 1..request_size.
    sa.Column("request_id", Id),
    sa.Column("request_index", Count),
    sa.Column("request_size", Count),
    # The image a Vary, Edit or Animate came from.
    sa.Column("source_job_id", Id),
    sa.Column("source_image_index", Count),
    sa.Column("media", Text, server_default=sa.text("'image'")),  # image | video
    sa.Column("video_seconds", Count),
    sa.Column("video_resolution", Text),
    sa.Column("units", Count, server_default=sa.text("1")),  # what it costs against quotas
    sa.Column("gallery_removed_at", Time),
    sa.Column("gallery_removed_by", Id),
    sa.Index("jobs_due", "source", "status", "next_poll_at"),
    sa.Index("jobs_durations", "has_refs", "finished_at"),
    sa.Index("jobs_user", "guild_id", "user_id", "created_at"),
    sa.Index("jobs_task", "task_id"),
    # /history pages by job id on an index that holds exactly the listed rows, and counts their
    # requests from it (revision 0015).
    sa.Index(
        "jobs_history_posts",
        "guild_id",
        "user_id",
        "id",
        "request_id",
        sqlite_where=sa.text("status = 'delivered' AND result_message_id IS NOT NULL"),
        postgresql_where=sa.text("status = 'delivered' AND result_message_id IS NOT NULL"),
    ),
    sa.Index(
        "jobs_request",
        "request_id",
        sqlite_where=sa.text("request_id IS NOT NULL"),
        postgresql_where=sa.text("request_id IS NOT NULL"),
    ),
    # Leases: a poll claim or a job in a process's hands, found by owner on a clean stop.
    sa.Index(
        "jobs_lease_owner",
        "lease_owner",
        sqlite_where=sa.text("lease_owner IS NOT NULL"),
        postgresql_where=sa.text("lease_owner IS NOT NULL"),
    ),
    # The web gallery: a member's posted images, newest first (`gallery_repo`).
    sa.Index(
        "jobs_gallery_user",
        "user_id",
        "id",
        sqlite_where=sa.text("status = 'delivered'"),
        postgresql_where=sa.text("status = 'delivered'"),
    ),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", Text, primary_key=True),
    sa.Column("value", Text),
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("guild_id", Id),  # None: personal use, which belongs to no server
    sa.Column("channel_id", Id),
    sa.Column("user_id", Id, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("prompt", Text),
    sa.Column("aspect_ratio", Text),
    sa.Column("ref_count", Count, server_default=ZERO),
    # refused | submitted | completed | failed | timed_out | cancelled
    sa.Column("outcome", Text, nullable=False),
    sa.Column("reason", Text),  # why refused: quota, cooldown, banned, blocked_prompt, bad_input, ...
    sa.Column("detail", Text),  # e.g. the prompt rule that matched
    # The units (images; a video counts its seconds times the server's rate) it holds against the
    # member's quota, 0 once refunded; and the credits it used.
    sa.Column("counted", Count, server_default=ZERO),
    sa.Column("used_credit", Count, server_default=ZERO),
    sa.Column("job_id", Id),
    sa.Column("task_id", Text),
    sa.Column("duration", Time),
    sa.Column("context", Text),
    sa.Column("style", Text),
    sa.Column("request_id", Id),  # the request's first job, shared by each task's row
    sa.Column("media", Text, server_default=sa.text("'image'")),  # image | video
    sa.Column("video_seconds", Count),
    sa.Column("source_job_id", Id),  # the image a Vary, Edit or Animate came from
    sa.Column("source_image_index", Count),
    sa.Index("usage_user_time", "guild_id", "user_id", "created_at"),
    sa.Index("usage_guild_time", "guild_id", "created_at"),
    sa.Index("usage_time", "created_at"),
    sa.Index(
        "usage_running",
        "guild_id",
        "user_id",
        sqlite_where=sa.text("outcome = 'submitted'"),
        postgresql_where=sa.text("outcome = 'submitted'"),
    ),
)

guild_settings = sa.Table(
    "guild_settings",
    metadata,
    sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
    sa.Column("default_quota", Count),
    sa.Column("timezone", Text),
    sa.Column("cooldown_seconds", Count),
    sa.Column("max_running", Count),
    sa.Column("daily_cap", Count),
    sa.Column("exempt_managers", Count),
    sa.Column("modlog_channel_id", Id),
    sa.Column("modlog_finished", Count),
    sa.Column("refund_cancelled", Count),
    sa.Column("private_images", Count),
    sa.Column("count_limit", Count),  # the most images one request may ask for
    sa.Column("video_rate", Rate),  # images a second of video costs
    sa.Column("videos_enabled", Count),
    sa.Column("gallery_enabled", Count),
    sa.Column("gallery_hide_banned", Count),
)

role_count_limits = sa.Table(
    "role_count_limits",
    metadata,
    sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
    sa.Column("role_id", Id, primary_key=True, autoincrement=False),
    sa.Column("count_limit", Count, nullable=False),
)

role_quotas = sa.Table(
    "role_quotas",
    metadata,
    sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
    sa.Column("role_id", Id, primary_key=True, autoincrement=False),
    sa.Column("daily_limit", Count),
)

user_quotas = sa.Table(
    "user_quotas",
    metadata,
    sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
    sa.Column("user_id", Id, primary_key=True, autoincrement=False),
    sa.Column("daily_limit", Count),
    sa.Column("unlimited", Count, server_default=ZERO),
    sa.Column("credits", Count, server_default=ZERO),
    sa.Column("count_limit", Count),
)

bans = sa.Table(
    "bans",
    metadata,
    sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
    sa.Column("user_id", Id, primary_key=True, autoincrement=False),
    sa.Column("reason", Text),
    sa.Column("banned_by", Id),
    sa.Column("created_at", Time),
    sa.Column("expires_at", Time),
)

prompt_rules = sa.Table(
    "prompt_rules",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("guild_id", Id),
    sa.Column("kind", Text),
    sa.Column("pattern", Text),
    sa.Column("added_by", Id),
    sa.Column("created_at", Time),
    sa.Index("prompt_rules_guild", "guild_id"),
)

admin_log = sa.Table(
    "admin_log",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("guild_id", Id),
    sa.Column("actor_id", Id),
    sa.Column("action", Text),
    sa.Column("target", Text),
    sa.Column("details", Text),
    sa.Column("created_at", Time),
    sa.Index("admin_log_guild", "guild_id", "created_at"),
)

personal_bans = sa.Table(
    "personal_bans",
    metadata,
    sa.Column("user_id", Id, primary_key=True, autoincrement=False),
    sa.Column("reason", Text),
    sa.Column("created_at", Time),
    sa.Column("expires_at", Time),
)

styles = sa.Table(
    "styles",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("guild_id", Id, nullable=False),
    sa.Column("name", Text, nullable=False),
    sa.Column("text", Text, nullable=False),
    sa.Column("created_by", Id),
    sa.Column("created_at", Time, nullable=False),
    sa.Column(
        "name_key", Text, nullable=False
    ),  # folding.name_key(name): one style per name, whatever its case
    sa.Index("styles_name_key", "guild_id", "name_key", unique=True),
)

member_settings = sa.Table(
    "member_settings",
    metadata,
    sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
    sa.Column("user_id", Id, primary_key=True, autoincrement=False),
    sa.Column("aspect_ratio", Text),
    sa.Column("style", Text),
    sa.Column("delivery", Text),
    sa.Column("updated_at", Time),
    sa.Column("image_count", Count),  # the member's default /imagine count
)

# Each image's way to its requester, written before it is sent (`deliveries_repo`).
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("job_id", Id, primary_key=True, autoincrement=False),
    sa.Column("image_index", Count, primary_key=True, autoincrement=False),
    sa.Column("route", Text, nullable=False),
    sa.Column("state", Text, nullable=False),
    sa.Column("message_id", Id),
    sa.Column("channel_id", Id),
    sa.Column("updated_at", Time, nullable=False),
)

# The words of each posted prompt, per member (bot/core/prompt_words.py): the gallery's search.
prompt_terms = sa.Table(
    "prompt_terms",
    metadata,
    sa.Column("user_id", Id, primary_key=True, autoincrement=False),
    sa.Column("term", Text, primary_key=True),
    sa.Column("job_id", Id, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# Every table, in an order that copies cleanly (used by `migrate-db`).
TABLES = tuple(table.name for table in metadata.sorted_tables)
# Tables whose `id` is drawn from a sequence on PostgreSQL.
SERIAL = tuple(
    table.name
    for table in metadata.sorted_tables
    if "id" in table.c and table.c.id.autoincrement is not False and table.c.id.primary_key
)
