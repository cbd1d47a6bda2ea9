"""What the usage log and the ban list hold as the reports read them: plain records the store fills and
the reports (bot/core/reports.py) turn into text, and the columns of the usage export."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UsageSummary:
    """What /usage shows a member about themselves."""

    used_today: int
    used_month: int
    limit: int | None
    credits: int
    running: int
    resets_at: float
    banned_until: float | None
    banned: bool


@dataclass(frozen=True)
class Stats:
    """A report over one window of the usage log."""

    generations: int
    completed: int
    failed: int
    refusals: dict[str, int]
    top_users: list[tuple[int, int]]

    @property
    def failure_rate(self) -> float:
        finished = self.completed + self.failed
        return self.failed / finished if finished else 0.0


EXPORT_COLUMNS = (
    "id",
    "created_at",
    "guild_id",
    "channel_id",
    "user_id",
    "outcome",
    "reason",
    "detail",
    "counted",
    "aspect_ratio",
    "ref_count",
    "duration",
    "task_id",
    "job_id",
    "style",
    "prompt",
    # One row per task since revision 0014: the request it belongs to (its first job's id), what it
    # made, the credits it used, and the image a Vary, Edit or Animate came from.
    "request_id",
    "media",
    "video_seconds",
    "used_credit",
    "source_job_id",
    "source_image_index",
)


@dataclass(frozen=True)
class BanEntry:
    user_id: int
    reason: str | None
    banned_by: int | None
    created_at: float
    expires_at: float | None
