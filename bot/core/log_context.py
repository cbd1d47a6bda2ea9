"""Log context: the job, task, trace and server ids bound to the work at hand, through a contextvar.

The core binds them (`bind_job`, `log_context`); the operators' log formatter (`bot.ops.logs`) reads
them. Kept apart so the core never imports the operations package."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

# Facts a JSON line carries when known: set around a piece of work with `log_context(...)` or
# `bind_job(...)`, or passed as `extra={...}`. Never scraped from the message text.
CONTEXT_FIELDS = ("job_id", "task_id", "trace_id", "guild_id")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Attach job/task/trace/guild ids to every record logged inside the block (and its tasks)."""
    merged = {**(_context.get() or {}), **{k: v for k, v in values.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class _HasIds(Protocol):
    id: int
    task_id: str | None
    guild_id: int | None


def bind_job(job: _HasIds) -> None:
    """Tag the rest of the current task's log records with a job's ids. Each job's submit, poll and
    delivery runs in a task of its own (with a copy of the context), so the tag ends with the task."""
    _context.set(
        {**(_context.get() or {}), "job_id": job.id, "task_id": job.task_id, "guild_id": job.guild_id}
    )


@contextmanager
def job_context(job: _HasIds) -> Iterator[None]:
    """Like `bind_job`, for a block inside a task that is not the job's own (a command's use case, the
    lease loop taking a job over): the ids end with the block."""
    with log_context(job_id=job.id, task_id=job.task_id, guild_id=job.guild_id):
        yield


def current_context() -> dict[str, Any]:
    """The ids bound where this is called (empty outside any bound work)."""
    return dict(_context.get() or {})
