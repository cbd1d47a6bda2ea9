"""The PostgreSQL schema, as ordered migrations (lists of statements). It starts at the shape SQLite
reached at its version 6: the SQLite repair migration exists only for old SQLite files. Never edit a
released entry: append a new one."""

from __future__ import annotations

_V1_SCHEMA = [
    """CREATE TABLE jobs (
        id BIGSERIAL PRIMARY KEY,
        source TEXT NOT NULL,
        status TEXT NOT NULL,
        prompt TEXT NOT NULL,
        aspect_ratio TEXT,
        reference_urls TEXT,
        has_refs INTEGER DEFAULT 0,
        guild_id BIGINT,
        channel_id BIGINT,
        user_id BIGINT,
        interaction_id BIGINT,
        application_id BIGINT,
        interaction_token TEXT,
        token_expires_at DOUBLE PRECISION,
        message_id BIGINT,
        task_id TEXT,
        trace_id TEXT,
        api_status TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        submitted_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        delivered_at DOUBLE PRECISION,
        poll_count INTEGER DEFAULT 0,
        poll_errors INTEGER DEFAULT 0,
        next_poll_at DOUBLE PRECISION,
        error TEXT,
        result_urls TEXT,
        delivery TEXT,
        result_message_id BIGINT,
        usage_id BIGINT,
        result_channel_id BIGINT,
        result_deleted_at DOUBLE PRECISION,
        cancelled_by BIGINT,
        delivery_attempts INTEGER,
        lease_owner TEXT,
        leased_until DOUBLE PRECISION
    )""",
    "CREATE INDEX jobs_due ON jobs (source, status, next_poll_at)",
    "CREATE INDEX jobs_durations ON jobs (has_refs, finished_at)",
    "CREATE INDEX jobs_user ON jobs (guild_id, user_id, created_at)",
    "CREATE INDEX jobs_task ON jobs (task_id)",
    "CREATE INDEX jobs_history_posts ON jobs (guild_id, user_id, id)"
    " WHERE status = 'delivered' AND result_message_id IS NOT NULL",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    """CREATE TABLE usage (
        id BIGSERIAL PRIMARY KEY,
        guild_id BIGINT NOT NULL,
        channel_id BIGINT,
        user_id BIGINT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        prompt TEXT,
        aspect_ratio TEXT,
        ref_count INTEGER DEFAULT 0,
        outcome TEXT NOT NULL,
        reason TEXT,
        detail TEXT,
        counted INTEGER DEFAULT 0,
        used_credit INTEGER DEFAULT 0,
        job_id BIGINT,
        task_id TEXT,
        duration DOUBLE PRECISION
    )""",
    "CREATE INDEX usage_user_time ON usage (guild_id, user_id, created_at)",
    "CREATE INDEX usage_guild_time ON usage (guild_id, created_at)",
    "CREATE INDEX usage_time ON usage (created_at)",
    "CREATE INDEX usage_running ON usage (guild_id, user_id) WHERE outcome = 'submitted'",
    """CREATE TABLE guild_settings (
        guild_id BIGINT PRIMARY KEY,
        default_quota INTEGER,
        timezone TEXT,
        cooldown_seconds INTEGER,
        max_running INTEGER,
        daily_cap INTEGER,
        exempt_managers INTEGER,
        modlog_channel_id BIGINT,
        modlog_finished INTEGER,
        refund_cancelled INTEGER
    )""",
    """CREATE TABLE role_quotas (
        guild_id BIGINT NOT NULL, role_id BIGINT NOT NULL, daily_limit INTEGER,
        PRIMARY KEY (guild_id, role_id)
    )""",
    """CREATE TABLE user_quotas (
        guild_id BIGINT NOT NULL, user_id BIGINT NOT NULL, daily_limit INTEGER,
        unlimited INTEGER DEFAULT 0, credits INTEGER DEFAULT 0,
        PRIMARY KEY (guild_id, user_id)
    )""",
    """CREATE TABLE bans (
        guild_id BIGINT NOT NULL, user_id BIGINT NOT NULL, reason TEXT, banned_by BIGINT,
        created_at DOUBLE PRECISION, expires_at DOUBLE PRECISION,
        PRIMARY KEY (guild_id, user_id)
    )""",
    """CREATE TABLE prompt_rules (
        id BIGSERIAL PRIMARY KEY, guild_id BIGINT, kind TEXT, pattern TEXT, added_by BIGINT,
        created_at DOUBLE PRECISION
    )""",
    "CREATE INDEX prompt_rules_guild ON prompt_rules (guild_id)",
    """CREATE TABLE admin_log (
        id BIGSERIAL PRIMARY KEY, guild_id BIGINT, actor_id BIGINT, action TEXT, target TEXT,
        details TEXT, created_at DOUBLE PRECISION
    )""",
    "CREATE INDEX admin_log_guild ON admin_log (guild_id, created_at)",
    # Leases: a poll claim or a job in a process's hands, found by owner on a clean stop.
    "CREATE INDEX jobs_lease_owner ON jobs (lease_owner) WHERE lease_owner IS NOT NULL",
]

# Personal use (SQLite's version 7): usage rows with no server and their context, a job's context and
# interaction follow-up count, and the operator's bans from personal use.
_V2_PERSONAL_USE = [
    "ALTER TABLE usage ALTER COLUMN guild_id DROP NOT NULL",
    "ALTER TABLE usage ADD COLUMN context TEXT",
    "ALTER TABLE jobs ADD COLUMN context TEXT",
    "ALTER TABLE jobs ADD COLUMN place_guild_id BIGINT",
    "ALTER TABLE jobs ADD COLUMN followups_used INTEGER",
    """CREATE TABLE personal_bans (
        user_id BIGINT PRIMARY KEY, reason TEXT, created_at DOUBLE PRECISION,
        expires_at DOUBLE PRECISION
    )""",
]

# Server styles, members' own settings, and where a job's style and private delivery live (SQLite v8).
_V3_STYLES_AND_PERSONAL_SETTINGS = [
    """CREATE TABLE styles (
        id BIGSERIAL PRIMARY KEY, guild_id BIGINT NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL,
        created_by BIGINT, created_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE UNIQUE INDEX styles_name ON styles (guild_id, lower(name))",
    """CREATE TABLE member_settings (
        guild_id BIGINT NOT NULL, user_id BIGINT NOT NULL, aspect_ratio TEXT, style TEXT, delivery TEXT,
        updated_at DOUBLE PRECISION,
        PRIMARY KEY (guild_id, user_id)
    )""",
    "ALTER TABLE usage ADD COLUMN style TEXT",
    "ALTER TABLE jobs ADD COLUMN style TEXT",
    "ALTER TABLE jobs ADD COLUMN style_text TEXT",
    "ALTER TABLE jobs ADD COLUMN deliver_to TEXT",
    "ALTER TABLE guild_settings ADD COLUMN private_images INTEGER",
]

# Applied in order; a database at version N gets PG_MIGRATIONS[N:].
PG_MIGRATIONS: list[list[str]] = [
    _V1_SCHEMA,
    _V2_PERSONAL_USE,
    _V3_STYLES_AND_PERSONAL_SETTINGS,
    # The requester's and the server's Discord locale: later messages are written in their language.
    ["ALTER TABLE jobs ADD COLUMN locale TEXT", "ALTER TABLE jobs ADD COLUMN guild_locale TEXT"],
    # Each image's way to its requester, written before it is sent (SQLite v10).
    [
        """CREATE TABLE deliveries (
            job_id BIGINT NOT NULL, image_index INTEGER NOT NULL, route TEXT NOT NULL, state TEXT NOT NULL,
            message_id BIGINT, channel_id BIGINT, updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (job_id, image_index)
        )"""
    ],
    # The web gallery (SQLite's version 11): a member's posted images newest first, and the words of
    # their prompts; images posted before it get their words from gallery_repo.backfill_terms.
    [
        "CREATE INDEX jobs_gallery_user ON jobs (user_id, id) WHERE status = 'delivered'",
        """CREATE TABLE prompt_terms (
            user_id BIGINT NOT NULL, term TEXT NOT NULL, job_id BIGINT NOT NULL,
            PRIMARY KEY (user_id, term, job_id)
        )""",
        "INSERT INTO meta (key, value) SELECT 'prompt_terms_backfill', CAST(MAX(id) AS TEXT) FROM jobs"
        " HAVING MAX(id) IS NOT NULL",
    ],
]

# Every table, in an order that copies cleanly (used by `migrate-db`).
TABLES = (
    "meta",
    "guild_settings",
    "role_quotas",
    "user_quotas",
    "bans",
    "personal_bans",
    "prompt_rules",
    "admin_log",
    "usage",
    "jobs",
    "styles",
    "member_settings",
    "deliveries",
    "prompt_terms",
)
