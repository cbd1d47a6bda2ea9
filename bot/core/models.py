"""Plain data that travels between the Discord side, the runner and the store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    QUEUED = "queued"  # written, not yet sent: safe to submit after a restart
    SUBMITTING = "submitting"  # the submit is in flight: after a crash its outcome is unknown
    RUNNING = "running"  # the API gave a task id; the poll loop follows it
    COMPLETED = "completed"  # images known, not yet delivered
    DELIVERED = "delivered"
    FAILED = "failed"  # the API refused, failed, cancelled or returned no image
    TIMED_OUT = "timed_out"  # our own time limit ran out
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # the submit may or may not have started a task: never resubmitted

    @property
    def is_final(self) -> bool:
        return self in FINAL_JOB_STATUSES


FINAL_JOB_STATUSES = frozenset(
    {JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED, JobStatus.UNKNOWN}
)


class Stage(StrEnum):
    """What the requester is told while a job runs."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    RENDERING = "rendering"
    DELIVERING = "delivering"
    SERVICE_DOWN = "service_down"  # the image service is not answering; the request waits


# Where a Discord request was made (stored on the job and the usage row). Only GUILD is a server that
# installed the bot; the others are personal use (the app installed to the person's account), which has
# its own quota and no server, and where the bot may have no channel access at all.
GUILD = "guild"
USER_INSTALL_GUILD = "user_install_guild"  # a server the bot is not in, through the person's install
DM = "dm"  # the person's DM with the bot
PRIVATE_CHANNEL = "private_channel"  # a group DM, or a DM between other people
PERSONAL_CONTEXTS = frozenset({USER_INSTALL_GUILD, DM, PRIVATE_CHANNEL})
MAX_FOLLOWUPS = 5
"""Follow-up messages Discord allows per interaction of a user-installed app outside its servers."""


def with_style(prompt: str, style_text: str | None) -> str:
    """What the image service is sent: the member's own prompt, then the server style's text."""
    return f"{prompt}, {style_text}" if style_text else prompt


@dataclass(frozen=True)
class ImageRequest:
    """A validated request, free of any Discord type. `prompt` is the member's own words; a server
    style (`style`, its text as it was when the request was made) is added only when it is sent."""

    prompt: str
    aspect_ratio: str | None = None
    reference_urls: tuple[str, ...] = ()
    style: str | None = None
    style_text: str | None = None
    media: str = "image"  # image | video (bot/core/video_contract.py)
    video_seconds: int | None = None
    video_resolution: str | None = None
    # The image a Vary, Edit or Animate came from: its job and its 1-based place in that job's images.
    source_job_id: int | None = None
    source_image_index: int | None = None

    @property
    def full_prompt(self) -> str:
        """The prompt as sent, with the style: the prompt rules and the length limit apply to it."""
        return with_style(self.prompt, self.style_text)


@dataclass(frozen=True)
class Origin:
    """Where a request came from and where its outcome goes back to."""

    source: str = "discord"  # discord | cli | bench: a runner only resumes its own
    guild_id: int | None = None
    channel_id: int | None = None
    user_id: int | None = None
    interaction_id: int | None = None
    application_id: int | None = None
    interaction_token: str | None = None
    token_expires_at: float | None = None
    message_id: int | None = None
    context: str | None = None  # GUILD or a personal context; None outside Discord
    place_guild_id: int | None = None  # the server of a USER_INSTALL_GUILD request (for links only)
    # Where the finished image goes: None (the channel), "ephemeral" or "dm" (the member's private
    # delivery, where the server allows it).
    deliver_to: str | None = None
    locale: str | None = None  # the requester's Discord locale (e.g. "zh-CN"): private messages
    guild_locale: str | None = None  # the server's: public messages in the server

    @property
    def is_personal(self) -> bool:
        return self.context in PERSONAL_CONTEXTS


@dataclass
class Job:
    id: int
    source: str
    status: JobStatus
    prompt: str
    aspect_ratio: str | None
    reference_urls: list[str]
    guild_id: int | None
    channel_id: int | None
    user_id: int | None
    interaction_id: int | None
    application_id: int | None
    interaction_token: str | None
    token_expires_at: float | None
    message_id: int | None
    task_id: str | None
    trace_id: str | None
    api_status: str | None
    created_at: float
    submitted_at: float | None
    finished_at: float | None
    delivered_at: float | None
    poll_count: int
    poll_errors: int
    next_poll_at: float | None
    error: str | None
    result_urls: list[str] = field(default_factory=list)
    delivery: str | None = None
    result_message_id: int | None = None
    usage_id: int | None = None
    result_channel_id: int | None = None
    result_deleted_at: float | None = None
    cancelled_by: int | None = None
    context: str | None = None
    place_guild_id: int | None = None
    followups_used: int = 0  # interaction follow-ups sent so far (personal use allows MAX_FOLLOWUPS)
    style: str | None = None
    style_text: str | None = None
    deliver_to: str | None = None
    locale: str | None = None
    guild_locale: str | None = None
    # A request of several tasks: its jobs share request_id (the first job's id) at request_index
    # 1..request_size. None for a request of one written before revision 0014 (its own request).
    request_id: int | None = None
    request_index: int = 1
    request_size: int = 1
    source_job_id: int | None = None
    source_image_index: int | None = None
    media: str = "image"  # image | video
    video_seconds: int | None = None
    video_resolution: str | None = None
    units: int = 1  # what it costs against quotas

    @property
    def request(self) -> int:
        """The id of the request this job belongs to (its own for a request of one)."""
        return self.request_id if self.request_id is not None else self.id

    @property
    def is_personal(self) -> bool:
        return self.context in PERSONAL_CONTEXTS

    @property
    def full_prompt(self) -> str:
        """What the image service was sent: the member's prompt and the style's text."""
        return with_style(self.prompt, self.style_text)

    @property
    def has_references(self) -> bool:
        return bool(self.reference_urls)

    @property
    def kind(self) -> str:
        """Jobs of one kind take alike long; the poll schedule and the ETA learn per kind. A video takes
        far longer than an image (with or without a reference), so it is a kind of its own."""
        if self.media == "video":
            return "video"
        return "edit" if self.reference_urls else "text"

    def token_usable(self, now: float, margin: float = 30.0) -> bool:
        return bool(self.interaction_token) and (self.token_expires_at or 0) - margin > now

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            id=row["id"],
            source=row["source"],
            status=JobStatus(row["status"]),
            prompt=row["prompt"],
            aspect_ratio=row["aspect_ratio"],
            reference_urls=json.loads(row["reference_urls"] or "[]"),
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            user_id=row["user_id"],
            interaction_id=row["interaction_id"],
            application_id=row["application_id"],
            interaction_token=row["interaction_token"],
            token_expires_at=row["token_expires_at"],
            message_id=row["message_id"],
            task_id=row["task_id"],
            trace_id=row["trace_id"],
            api_status=row["api_status"],
            created_at=row["created_at"],
            submitted_at=row["submitted_at"],
            finished_at=row["finished_at"],
            delivered_at=row["delivered_at"],
            poll_count=row["poll_count"] or 0,
            poll_errors=row["poll_errors"] or 0,
            next_poll_at=row["next_poll_at"],
            error=row["error"],
            result_urls=json.loads(row["result_urls"] or "[]"),
            delivery=row["delivery"],
            result_message_id=row["result_message_id"],
            usage_id=row.get("usage_id"),
            result_channel_id=row.get("result_channel_id"),
            result_deleted_at=row.get("result_deleted_at"),
            cancelled_by=row.get("cancelled_by"),
            context=row.get("context"),
            place_guild_id=row.get("place_guild_id"),
            followups_used=row.get("followups_used") or 0,
            style=row.get("style"),
            style_text=row.get("style_text"),
            deliver_to=row.get("deliver_to"),
            locale=row.get("locale"),
            guild_locale=row.get("guild_locale"),
            request_id=row.get("request_id"),
            request_index=row.get("request_index") or 1,
            request_size=row.get("request_size") or 1,
            source_job_id=row.get("source_job_id"),
            source_image_index=row.get("source_image_index"),
            media=row.get("media") or "image",
            video_seconds=row.get("video_seconds"),
            video_resolution=row.get("video_resolution"),
            units=row.get("units") or 1,
        )
