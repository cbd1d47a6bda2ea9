"""What the runner needs from the outside world, as Protocols the adapters implement.

The core names the image service, the result fetcher, the job store and the sink by what it asks of
them; `bot.adapters` implements the first three (`image_service`, `result_files`, the store), the Discord
adapter, the terminal and the benchmark each implement a sink. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.models import ImageRequest, Job, JobStatus, Origin, Stage
from bot.core.policy.prompt_rules import PromptRule, RuleMatch
from bot.core.policy.quotas import Decision, GuildPolicy, Member
from bot.core.policy.rulebook import Signature
from bot.core.texts import Text

# -- the image service ---------------------------------------------------------------------------------


class ServiceError(Exception):
    """The image service answered in a way the runner turns into a job state; `reason` is for logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ServiceKeyRefused(ServiceError):
    """The service refused the API key (401/403): the operator must act."""


class ServiceRefused(ServiceError):
    """The service refused this request (400/422); `reason` may be shown to the requester."""


class ServiceBusy(ServiceError):
    """Rate limited (429); `retry_after` seconds as the service asked, when it said."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ServiceUnreachable(ServiceError):
    """A 5xx, a time-out or a broken connection. `reached_server`: the request may have started a task."""

    def __init__(self, reason: str, *, reached_server: bool) -> None:
        super().__init__(reason)
        self.reached_server = reached_server


class TaskUnknown(ServiceError):
    """The service no longer knows the task (404 on a poll)."""


class ServiceMalformed(ServiceError):
    """An answer the runner cannot read (no task id, unknown status, too large, too deep, ...)."""


@dataclass(frozen=True)
class TaskReport:
    """One poll's answer: the task's status and, once completed, its images (URLs or data: URIs) and
    the video links found in it (the runner reads the one that fits the job's media)."""

    status: str
    is_running: bool
    trace_id: str | None = None
    error_message: str | None = None
    image_refs: list[str] = field(default_factory=list)
    video_refs: list[str] = field(default_factory=list)


class ImageService(Protocol):
    """The image API as the runner uses it; raises the `ServiceError`s above (anything else it raises
    is treated as an unreadable answer)."""

    async def submit(self, prompt: str, aspect_ratio: str | None, images: Sequence[str]) -> str: ...

    async def submit_video(
        self,
        prompt: str,
        *,
        duration: int,
        aspect_ratio: str | None,
        resolution: str | None,
        image: str | None,
    ) -> str:
        """Start a video task; with `image` the clip animates it (its size decides the video's)."""
        ...

    async def poll(self, task_id: str) -> TaskReport: ...


# -- result images ---------------------------------------------------------------------------------------


class FetchFailed(Exception):
    """One download attempt failed. `text` is what the requester may read; `detail` only for logs.
    `blocked`: a link the bot refuses to fetch (never shown); `permanent`: retrying will not help."""

    def __init__(self, text: Text, *, detail: str, blocked: bool = False, permanent: bool = False) -> None:
        super().__init__(text)
        self.text, self.detail, self.blocked, self.permanent = text, detail, blocked, permanent


class ResultFetcher(Protocol):
    """Downloads result images. The files it returns go to the sink untouched, so the core never
    looks inside them (`bot.core.image_file.ImageFile` in the bot)."""

    async def fetch(self, ref: str) -> Any:
        """One attempt at one image, its pixels limited; raises FetchFailed."""
        ...

    async def fetch_video(self, ref: str) -> Any:
        """One attempt at one video (public addresses only, size capped, an MP4 by its bytes);
        raises FetchFailed."""
        ...

    def unfetched(self, url: str | None, error: Text) -> Any:
        """The file handed to the sink for an image that could not be fetched."""
        ...


# -- the sink ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReceipt:
    """How the outcome reached the requester (`channel`, `interaction`, `dm`, `file`, ...)."""

    delivery: str
    message_id: int | None = None
    channel_id: int | None = None


class VideoRefused(Exception):
    """Raised by a sink's `deliver` for a video it cannot post as made (larger than the upload limit
    even re-encoded): the job fails, refunded, and the requester reads `text` (what they can do)."""

    def __init__(self, text: Text) -> None:
        super().__init__(text)
        self.text = text


class JobSink(Protocol):
    """Where outcomes go. A sink may also have `show_cancelled(job, text)` and
    `modlog(guild_id, text, *, throttle)` (the Discord sink does): the runner calls them when present,
    so cancellations and mod-log entries flow command → runner → sink like everything else."""

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None: ...

    async def deliver(self, job: Job, images: list[Any], elapsed: float) -> DeliveryReceipt: ...

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt: ...

    async def find_delivery(self, job: Job) -> DeliveryReceipt | None:
        """The job's image post, if an earlier process already made it (None: not found, or the sink
        cannot tell). Asked after a restart before posting a finished job again."""
        ...


# -- the store ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PollRecord:
    """One poll's outcome for the store: when to poll next, what the service said (None: no answer),
    and the failed polls in a row. Recorded, the poll's claim on the job ends."""

    job_id: int
    next_poll_at: float
    poll_errors: int
    api_status: str | None = None
    trace_id: str | None = None


class JobRows(Protocol):
    """The jobs repository (`store.jobs`) as the runner uses it: every method is one transaction."""

    async def recent_durations(
        self, has_refs: bool | None, limit: int = 50, *, media: str = "image"
    ) -> list[float]: ...

    async def create(self, request: ImageRequest, origin: Origin, now: float) -> Job: ...

    async def launch(self, job_id: int | Sequence[int], message_id: int | None, followups: int) -> None: ...

    async def abandon(self, job_id: int, reason: str, now: float) -> None: ...

    async def cancel(self, job_id: int, by_user: int, reason: str, now: float, *, refund: bool) -> bool: ...

    async def mark_result_deleted(self, job_id: int, now: float) -> None: ...

    async def mark_submitting(self, job_id: int) -> bool: ...

    async def mark_requeued(self, job_id: int) -> bool: ...

    async def mark_running(
        self, job_id: int, task_id: str, submitted_at: float, next_poll_at: float
    ) -> bool: ...

    async def record_poll(
        self,
        job_id: int,
        *,
        api_status: str | None,
        trace_id: str | None,
        next_poll_at: float,
        poll_errors: int,
    ) -> bool: ...

    async def record_polls(self, records: list[PollRecord]) -> set[int]: ...

    async def mark_completed(
        self, job_id: int, result_urls: list[str], finished_at: float, trace_id: str | None
    ) -> bool: ...

    async def mark_ended(
        self, job_id: int, status: JobStatus, error: str, finished_at: float, *, refund: bool = True
    ) -> bool: ...

    async def mark_video_refused(self, job_id: int, error: str, finished_at: float) -> bool: ...

    async def mark_delivered(
        self,
        job_id: int,
        *,
        delivery: str,
        result_message_id: int | None,
        now: float,
        result_channel_id: int | None = None,
    ) -> None: ...

    async def mark_undeliverable(self, job_id: int, *, retries: int, now: float) -> int: ...

    async def reset_leases(self, source: str, now: float) -> None: ...

    async def claim_due(self, source: str, now: float, limit: int, lease: float) -> list[Job]: ...

    async def next_poll_time(self, source: str) -> float | None: ...

    async def to_resume(self, source: str, *, now: float | None = None, lease: float = ...) -> list[Job]: ...

    async def renew_leases(self, held: list[int], polling: list[int], now: float, lease: float) -> int: ...

    async def take_over(self, source: str, now: float, lease: float, limit: int = 100) -> list[Job]: ...


class ServerAdmission(Protocol):
    """Admission under a server's quotas and the usage log (`store.usage`)."""

    async def admit(
        self,
        member: Member,
        request: ImageRequest,
        origin: Origin,
        now: float,
        global_default: int,
        rule_match: RuleMatch | None = None,
        *,
        count: int = 1,
        units_per_task: int = 1,
    ) -> tuple[Decision, list[Job]]: ...

    async def log_refusal(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        prompt: str | None,
        aspect_ratio: str | None,
        ref_count: int,
        reason: str,
        detail: str | None,
        now: float,
        context: str | None = None,
    ) -> None: ...


class PersonalAdmission(Protocol):
    """Admission under the personal quota (`store.personal`)."""

    async def admit(
        self,
        user_id: int,
        request: ImageRequest,
        origin: Origin,
        now: float,
        limit: int,
        max_running: int,
        rule_match: RuleMatch | None = None,
        *,
        count: int = 1,
        units_per_task: int = 1,
    ) -> tuple[Decision, list[Job]]: ...


class ServerSettings(Protocol):
    """A server's policy and prompt rules (`store.settings`)."""

    async def guild_policy(self, guild_id: int) -> GuildPolicy: ...

    async def rules_if_changed(
        self, guild_id: int, known: Signature | None
    ) -> tuple[Signature, list[PromptRule] | None]: ...


class JobStore(Protocol):
    """The store as the runner uses it, by repository. `errors` are the exceptions of a database that
    failed for now (busy, full, connection lost): worth retrying."""

    errors: tuple[type[Exception], ...]

    @property
    def exclusive(self) -> bool: ...

    @property
    def lease(self) -> float:
        """How long this process's leases on jobs last (JOB_LEASE_SECONDS): the one setting."""
        ...

    @property
    def jobs(self) -> JobRows: ...

    @property
    def usage(self) -> ServerAdmission: ...

    @property
    def personal(self) -> PersonalAdmission: ...

    @property
    def settings(self) -> ServerSettings: ...
