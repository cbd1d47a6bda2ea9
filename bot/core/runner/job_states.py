"""The job's states and the transitions between them, written down once; any other move is an error.

The store's conditional updates (`... WHERE status IN ...`) make the database agree with this table
under concurrency; the runner checks every move it makes against it before it writes, so a bug that
would, say, post a cancelled job or resubmit a running one stops at once with a clear error.
"""

from __future__ import annotations

from bot.core.models import Job, JobStatus

_ENDINGS = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED, JobStatus.UNKNOWN})

# state -> the states it may move to. An ending (failed, timed out, cancelled, unknown) is reached from
# any unfinished state; `delivered` only from `completed`; the final states lead nowhere.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.SUBMITTING, JobStatus.RUNNING}) | _ENDINGS,
    JobStatus.SUBMITTING: frozenset({JobStatus.QUEUED, JobStatus.RUNNING}) | _ENDINGS,
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED}) | _ENDINGS,
    JobStatus.COMPLETED: frozenset({JobStatus.DELIVERED}),
    JobStatus.DELIVERED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.TIMED_OUT: frozenset(),
    JobStatus.CANCELLED: frozenset(),
    JobStatus.UNKNOWN: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A move the table does not allow: a bug in the caller, never a member's doing."""


def allowed(source: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[source]


def check(job: Job, target: JobStatus) -> None:
    """Raise IllegalTransition unless `job` may move from its state to `target`."""
    if not allowed(job.status, target):
        raise IllegalTransition(f"job {job.id}: {job.status.value} → {target.value} is not allowed")


def advance(job: Job, target: JobStatus) -> None:
    """Record in memory a move the store has made (checked against the table first)."""
    check(job, target)
    job.status = target


def refuse_video(job: Job) -> None:
    """A finished video whose file proved unusable was not made after all: the one way from
    `completed` to `failed` (refunded; the store's `mark_video_refused` makes the same move). An image
    once made is never failed, so this is for videos only."""
    if job.status is not JobStatus.COMPLETED or job.media != "video":
        raise IllegalTransition(f"job {job.id}: only a completed video may be refused")
    job.status = JobStatus.FAILED
