"""Several images per request, videos and the server gallery, in one revision so the three features
build on one chain:

- jobs: a request of several tasks is several jobs sharing `request_id` (the id of its first job;
  NULL for a job written before this revision, which is a request of its own) at `request_index`
  1..`request_size`; `source_job_id`/`source_image_index` name the image a Vary, Edit or Animate
  came from; `media` is 'image' or 'video', with `video_seconds` and `video_resolution`; `units` is
  what the job costs against quotas (1 per image task, a video's seconds times the server's rate);
  `gallery_removed_at`/`gallery_removed_by` keep a moderator's removal from the server gallery.
- usage: one row per task, with its request, media, video length and source image; `counted` and
  `used_credit` hold units (1 for every row written before, so the sums read as the counts did).
- guild_settings: `count_limit` (the most images one request may ask for), `video_rate` (images per
  second of video), `videos_enabled`, `gallery_enabled` and `gallery_hide_banned`;
  role_count_limits and user_quotas.count_limit: the same maximum per role and per member;
  member_settings.image_count: a member's default count.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Count, Id, Rate, Text, Time

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    for column in (
        sa.Column("request_id", Id),
        sa.Column("request_index", Count),
        sa.Column("request_size", Count),
        sa.Column("source_job_id", Id),
        sa.Column("source_image_index", Count),
        sa.Column("media", Text, server_default=sa.text("'image'")),
        sa.Column("video_seconds", Count),
        sa.Column("video_resolution", Text),
        sa.Column("units", Count, server_default=sa.text("1")),
        sa.Column("gallery_removed_at", Time),
        sa.Column("gallery_removed_by", Id),
    ):
        op.add_column("jobs", column)
    where = sa.text("request_id IS NOT NULL")
    op.create_index("jobs_request", "jobs", ["request_id"], sqlite_where=where, postgresql_where=where)
    for column in (
        sa.Column("request_id", Id),
        sa.Column("media", Text, server_default=sa.text("'image'")),
        sa.Column("video_seconds", Count),
        sa.Column("source_job_id", Id),
        sa.Column("source_image_index", Count),
    ):
        op.add_column("usage", column)
    for column in (
        sa.Column("count_limit", Count),
        sa.Column("video_rate", Rate),
        sa.Column("videos_enabled", Count),
        sa.Column("gallery_enabled", Count),
        sa.Column("gallery_hide_banned", Count),
    ):
        op.add_column("guild_settings", column)
    op.create_table(
        "role_count_limits",
        sa.Column("guild_id", Id, primary_key=True, autoincrement=False),
        sa.Column("role_id", Id, primary_key=True, autoincrement=False),
        sa.Column("count_limit", Count, nullable=False),
    )
    op.add_column("user_quotas", sa.Column("count_limit", Count))
    op.add_column("member_settings", sa.Column("image_count", Count))
