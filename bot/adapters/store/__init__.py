"""The bot's database: every SQL statement of the bot, behind one facade, on SQLite or PostgreSQL.

The rest of the bot speaks to `Store` in intents (`create_job`, `claim_due_jobs`, `admit`, ...), so
nothing outside this package knows which database it is. The SQL lives in repositories by intent,
written once for both backends: `jobs` (jobs and their leases), `usage` (admission and the usage
log), `settings` (server settings and moderation) and `ops` (operator queries and meta). Each
repository function is one transaction; a `Backend` runs it off the event loop (SQLite: on its one
writer thread; PostgreSQL: on a pooled connection).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Protocol, Self

import psycopg

from bot.adapters.store import deliveries_repo as deliveries
from bot.adapters.store import gallery_repo as gallery
from bot.adapters.store import jobs_repo as jobs
from bot.adapters.store import overview_repo as ops
from bot.adapters.store import personal_repo as personal
from bot.adapters.store import settings_repo as settings
from bot.adapters.store import styles_repo as styles
from bot.adapters.store import usage_repo as usage
from bot.adapters.store.deliveries_repo import Delivery
from bot.adapters.store.gallery_repo import Facets, GalleryFilter, GalleryImage
from bot.adapters.store.interface import Backend
from bot.adapters.store.overview_repo import QuotaOverview
from bot.adapters.store.personal_repo import PersonalBan, PersonalStats
from bot.adapters.store.postgres_backend import PostgresBackend
from bot.adapters.store.settings_repo import AdminEntry, BanEntry
from bot.adapters.store.sqlite_backend import SqliteBackend, StoreCorruptError, migrate
from bot.adapters.store.sqlite_schema import MIGRATIONS
from bot.adapters.store.usage_repo import EXPORT_COLUMNS, Stats, UsageSummary
from bot.core.models import ImageRequest, Job, JobStatus, Origin
from bot.core.policy.prompt_rules import PromptRule, RuleMatch
from bot.core.policy.quotas import Decision, GuildPolicy, Member
from bot.core.policy.styles import MemberSettings, RequestDefaults, Style
from bot.core.redaction import redact

# Any database failure: busy, full, damaged, connection lost, ...
StoreError: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)

HISTORY_COUNT_CAP = jobs.HISTORY_COUNT_CAP


class _Revealable(Protocol):
    def reveal(self) -> str: ...


class DatabaseSettings(Protocol):
    """The part of `bot.config.Settings` that says where the data lives."""

    @property
    def database_path(self) -> Path: ...

    @property
    def database_url(self) -> _Revealable | None: ...

    @property
    def job_lease(self) -> float: ...


def new_owner() -> str:
    """This process's lease owner id: readable in the database, and unique even across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def database_label(settings: DatabaseSettings) -> str:
    """Where the data lives, fit for messages and logs (a URL's password is left out)."""
    if settings.database_url:
        return redact(settings.database_url.reveal())
    return str(settings.database_path)


async def open_store(settings: DatabaseSettings) -> Store:
    """The store the settings name: PostgreSQL when DATABASE_URL is set, else the SQLite file at
    DATABASE_PATH. Every entry point (the bot, the terminal commands) opens it through here."""
    if settings.database_url:
        return await Store.open_url(settings.database_url.reveal(), lease=settings.job_lease)
    return await Store.open(settings.database_path, lease=settings.job_lease)


class Store:
    """Every intent the bot has for its database."""

    # A database that failed for now (busy, full, connection lost): what the runner retries.
    errors: tuple[type[Exception], ...] = StoreError

    def __init__(self, backend: Backend, lease: float = jobs.WORK_LEASE) -> None:
        self._backend = backend
        backend.lease = lease
        self._closed = False
        # Prompt rules (SQLite only, where this process is the database's only writer): per server,
        # the rules' signature last read and the count of rule changes made here at the time.
        self._rule_changes: dict[int, int] = {}
        self._rules_seen: dict[int, tuple[tuple[object, ...], int]] = {}

    # -- lifecycle -----------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, path: Path | str, *, busy_timeout: float | None = None, lease: float = jobs.WORK_LEASE
    ) -> Self:
        """Open (creating and migrating) the SQLite database at `path`."""
        extra: dict[str, Any] = {} if busy_timeout is None else {"busy_timeout": busy_timeout}
        return cls(await SqliteBackend.open(path, new_owner(), **extra), lease)

    @classmethod
    async def open_url(cls, url: str, *, pool_size: int = 8, lease: float = jobs.WORK_LEASE) -> Self:
        """Open (creating and migrating) the PostgreSQL database at `url`. `lease`: how long this
        process holds a job it works on between renewals (JOB_LEASE_SECONDS)."""
        return cls(await PostgresBackend.open(url, new_owner(), pool_size=pool_size), lease)

    @property
    def owner(self) -> str:
        """The id this process's leases carry."""
        return self._backend.owner

    @property
    def lease(self) -> float:
        """How long this process's leases on jobs last between renewals."""
        return self._backend.lease

    @property
    def exclusive(self) -> bool:
        """True when this process is the database's only user (SQLite): no other process takes jobs
        over, so leases need no renewal."""
        return self._backend.exclusive

    @property
    def dialect(self) -> str:
        return self._backend.dialect

    @property
    def backend(self) -> Backend:
        return self._backend

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._backend.exclusive:
            # Another process may take this one's jobs at once instead of after their leases.
            with contextlib.suppress(*StoreError):  # if not, the leases expire by themselves
                await self._backend.run(jobs.release_leases, time.time())
        await self._backend.close()

    async def schema_version(self) -> int:
        return await self._backend.schema_version()

    # The SQLite backend's writer thread and connection, for tests of the write path only.
    async def _run(self, fn: Any, *args: Any) -> Any:
        assert isinstance(self._backend, SqliteBackend)
        return await self._backend.run_raw(fn, *args)

    @property
    def _db(self) -> Any:
        assert isinstance(self._backend, SqliteBackend)
        return self._backend._db

    def _write(self) -> Any:
        assert isinstance(self._backend, SqliteBackend)
        return self._backend.write()

    # -- meta and operators --------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        return await self._backend.run(ops.get_meta, key)

    async def set_meta(self, key: str, value: str) -> None:
        await self._backend.run(ops.set_meta, key, value)

    async def ping(self) -> None:
        await self._backend.run(ops.ping)

    async def unfinished_jobs_by_status(self, source: str) -> dict[str, int]:
        return await self._backend.run(ops.unfinished_jobs_by_status, source)

    async def refusals_between(self, since: float, until: float) -> dict[str, int]:
        return await self._backend.run(ops.refusals_between, since, until)

    async def quota_overview(self, guild_id: int) -> QuotaOverview:
        return await self._backend.run(ops.quota_overview, guild_id)

    # -- jobs ----------------------------------------------------------------------------------------

    async def create_job(self, request: ImageRequest, origin: Origin, now: float) -> Job:
        return await self._backend.run(jobs.create_job, request, origin, now)

    async def _update(self, job_id: int, **values: Any) -> None:
        await self._backend.run(jobs.update_job, job_id, values)

    async def launch(self, job_id: int, message_id: int | None, followups: int) -> None:
        await self._backend.run(jobs.launch, job_id, message_id, followups)

    async def cancel(self, job_id: int, by_user: int, reason: str, now: float, *, refund: bool) -> bool:
        return await self._backend.run(jobs.cancel, job_id, by_user, reason, now, refund)

    async def set_message_id(self, job_id: int, message_id: int) -> None:
        await self._update(job_id, message_id=message_id)

    async def mark_cancelled_by(self, job_id: int, user_id: int) -> None:
        await self._update(job_id, cancelled_by=user_id)

    async def mark_result_deleted(self, job_id: int, now: float) -> None:
        """The bot's image message was deleted; the job and usage rows stay."""
        await self._update(job_id, result_deleted_at=now)

    async def mark_requeued(self, job_id: int) -> bool:
        """A submit that certainly did not reach the API waits to be retried. False if cancelled."""
        return await self._backend.run(jobs.move, job_id, JobStatus.SUBMITTING, JobStatus.QUEUED)

    async def mark_submitting(self, job_id: int) -> bool:
        """The submit is about to be sent. False if the job was cancelled before that."""
        return await self._backend.run(jobs.move, job_id, JobStatus.QUEUED, JobStatus.SUBMITTING)

    async def reset_leases(self, source: str, now: float) -> None:
        await self._backend.run(jobs.reset_leases, source, now)

    async def mark_running(self, job_id: int, task_id: str, submitted_at: float, next_poll_at: float) -> bool:
        return await self._backend.run(jobs.mark_running, job_id, task_id, submitted_at, next_poll_at)

    async def record_poll(
        self,
        job_id: int,
        *,
        api_status: str | None,
        trace_id: str | None,
        next_poll_at: float,
        poll_errors: int,
    ) -> bool:
        return await self._backend.run(
            jobs.record_poll, job_id, api_status, trace_id, next_poll_at, poll_errors
        )

    async def mark_completed(
        self, job_id: int, result_urls: list[str], finished_at: float, trace_id: str | None
    ) -> bool:
        return await self._backend.run(jobs.mark_completed, job_id, result_urls, finished_at, trace_id)

    async def mark_ended(
        self, job_id: int, status: JobStatus, error: str, finished_at: float, *, refund: bool = True
    ) -> bool:
        return await self._backend.run(jobs.mark_ended, job_id, status, error, finished_at, refund)

    async def mark_delivered(
        self,
        job_id: int,
        *,
        delivery: str,
        result_message_id: int | None,
        now: float,
        result_channel_id: int | None = None,
    ) -> None:
        await self._backend.run(
            jobs.mark_delivered, job_id, delivery, result_message_id, result_channel_id, now
        )

    # -- each image's delivery, written before it is sent -------------------------------------------

    async def deliveries_of(self, job_id: int) -> list[Delivery]:
        return await self._backend.run(deliveries.deliveries_of, job_id)

    async def intend_delivery(self, job_id: int, indexes: list[int], route: str, now: float) -> bool:
        return await self._backend.run(deliveries.intend, job_id, indexes, route, now)

    async def settle_delivery(
        self,
        job_id: int,
        indexes: list[int],
        state: str,
        now: float,
        *,
        was: tuple[str, ...] = (deliveries.SENDING,),
        message_id: int | None = None,
        channel_id: int | None = None,
    ) -> bool:
        return await self._backend.run(
            deliveries.settle,
            job_id,
            indexes,
            state,
            now,
            was=was,
            message_id=message_id,
            channel_id=channel_id,
        )

    async def mark_undeliverable(self, job_id: int, *, retries: int, now: float) -> int:
        return await self._backend.run(jobs.mark_undeliverable, job_id, retries, now)

    async def abandon(self, job_id: int, reason: str, now: float) -> None:
        await self._backend.run(jobs.abandon, job_id, reason, now)

    async def unfinished_jobs(self, guild_id: int | None, user_id: int | None, limit: int = 25) -> list[Job]:
        return await self._backend.run(jobs.unfinished_jobs, guild_id, user_id, limit)

    async def delivered_history(
        self,
        guild_id: int | None,
        user_id: int,
        limit: int,
        *,
        older_than: int | None = None,
        newer_than: int | None = None,
    ) -> tuple[list[Job], int]:
        return await self._backend.run(
            jobs.delivered_history, guild_id, user_id, limit, older_than, newer_than
        )

    # -- the web gallery ---------------------------------------------------------------------------

    async def gallery_page(
        self, user_id: int, flt: GalleryFilter, *, before_id: int | None = None, limit: int = 30
    ) -> list[GalleryImage]:
        """A page of the member's own images, newest first, older than job `before_id`."""
        return await self._backend.run(gallery.my_images, user_id, flt, before_id, limit)

    async def gallery_image(self, user_id: int, job_id: int) -> GalleryImage | None:
        """One image of the member's own; None for anyone else's."""
        return await self._backend.run(gallery.my_image, user_id, job_id)

    async def gallery_facets(self, user_id: int) -> Facets:
        return await self._backend.run(gallery.my_facets, user_id)

    async def backfill_prompt_words(self, batch: int = 500) -> bool:
        """Index the prompt words of images posted before the gallery existed; True once done."""
        return await self._backend.run(gallery.backfill_terms, batch)

    async def get_job(self, job_id: int) -> Job | None:
        return await self._backend.run(jobs.get_job, job_id)

    async def claim_due_jobs(self, source: str, now: float, limit: int, lease: float) -> list[Job]:
        return await self._backend.run(jobs.claim_due_jobs, source, now, limit, lease)

    async def next_poll_time(self, source: str) -> float | None:
        return await self._backend.run(jobs.next_poll_time, source)

    async def jobs_to_resume(
        self, source: str, *, now: float | None = None, lease: float = jobs.WORK_LEASE
    ) -> list[Job]:
        """Jobs a previous process left half-way (see `jobs.jobs_to_resume`); with a shared database
        only those no live process holds, now held by this one."""
        return await self._backend.run(
            jobs.jobs_to_resume, source, time.time() if now is None else now, lease
        )

    async def renew_leases(self, held: list[int], polling: list[int], now: float, lease: float) -> int:
        return await self._backend.run(jobs.renew_leases, held, polling, now, lease)

    async def take_over_jobs(self, source: str, now: float, lease: float, limit: int = 100) -> list[Job]:
        """Work a dead (or stopped) process left, whose leases ran out; now held by this process."""
        return await self._backend.run(jobs.take_over_jobs, source, now, lease, limit)

    async def running_count(self, source: str) -> int:
        return await self._backend.run(jobs.running_count, source)

    async def recent_durations(self, has_refs: bool, limit: int = 50) -> list[float]:
        return await self._backend.run(jobs.recent_durations, has_refs, limit)

    # -- admission and usage -------------------------------------------------------------------------

    async def guild_policy(self, guild_id: int) -> GuildPolicy:
        return await self._backend.run(usage.guild_policy, guild_id)

    async def admit(
        self,
        member: Member,
        request: ImageRequest,
        origin: Origin,
        now: float,
        global_default: int,
        rule_match: RuleMatch | None = None,
    ) -> tuple[Decision, Job | None]:
        return await self._backend.run(usage.admit, member, request, origin, now, global_default, rule_match)

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
    ) -> None:
        row = {
            "guild_id": guild_id,
            "context": context,
            "channel_id": channel_id,
            "user_id": user_id,
            "created_at": now,
            "prompt": (prompt or "")[:6000],
            "aspect_ratio": aspect_ratio,
            "ref_count": ref_count,
            "outcome": "refused",
            "reason": reason,
            "detail": detail,
        }
        await self._backend.run(usage.log_refusal, row)

    async def usage_summary(self, member: Member, now: float, global_default: int) -> UsageSummary:
        return await self._backend.run(usage.usage_summary, member, now, global_default)

    async def stats(self, guild_id: int | None, since: float) -> Stats:
        return await self._backend.run(usage.stats, guild_id, since)

    async def export_usage(
        self, guild_id: int, start: float, end: float, limit: int
    ) -> list[tuple[Any, ...]]:
        return await self._backend.run(usage.export_usage, guild_id, start, end, limit)

    # -- personal use ----------------------------------------------------------------------------------

    async def admit_personal(
        self,
        user_id: int,
        request: ImageRequest,
        origin: Origin,
        now: float,
        limit: int,
        max_running: int,
        rule_match: RuleMatch | None = None,
    ) -> tuple[Decision, Job | None]:
        return await self._backend.run(
            personal.admit_personal, user_id, request, origin, now, limit, max_running, rule_match
        )

    async def personal_usage_summary(
        self, user_id: int, now: float, limit: int, max_running: int
    ) -> UsageSummary:
        return await self._backend.run(personal.personal_usage_summary, user_id, now, limit, max_running)

    async def ban_personal(
        self, user_id: int, *, reason: str | None, expires_at: float | None, now: float
    ) -> None:
        await self._backend.run(personal.ban, user_id, reason, expires_at, now)

    async def unban_personal(self, user_id: int) -> bool:
        return await self._backend.run(personal.unban, user_id)

    async def personal_bans(self, now: float) -> list[PersonalBan]:
        return await self._backend.run(personal.bans, now)

    async def personal_stats(self, since: float) -> PersonalStats:
        return await self._backend.run(personal.personal_stats, since)

    async def use_followup(self, job_id: int) -> bool:
        return await self._backend.run(personal.use_followup, job_id)

    async def set_followups(self, job_id: int, count: int) -> None:
        await self._update(job_id, followups_used=count)

    # -- server settings and moderation --------------------------------------------------------------

    async def update_policy(self, guild_id: int, actor_id: int, now: float, **changes: Any) -> None:
        await self._backend.run(settings.update_policy, guild_id, actor_id, now, changes)

    async def set_role_quota(
        self, guild_id: int, role_id: int, limit: int | None, actor_id: int, now: float
    ) -> None:
        await self._backend.run(settings.set_role_quota, guild_id, role_id, limit, actor_id, now)

    async def role_quotas(self, guild_id: int) -> dict[int, int]:
        return await self._backend.run(settings.role_quotas, guild_id)

    async def set_user_quota(
        self, guild_id: int, user_id: int, *, limit: int | None, unlimited: bool, actor_id: int, now: float
    ) -> None:
        await self._backend.run(settings.set_user_quota, guild_id, user_id, limit, unlimited, actor_id, now)

    async def grant_credits(
        self, guild_id: int, user_id: int, credits: int, actor_id: int, now: float
    ) -> int:
        return await self._backend.run(settings.grant_credits, guild_id, user_id, credits, actor_id, now)

    async def reset_today(self, guild_id: int, user_id: int, actor_id: int, now: float) -> int:
        return await self._backend.run(settings.reset_today, guild_id, user_id, actor_id, now)

    async def ban(
        self,
        guild_id: int,
        user_id: int,
        *,
        reason: str | None,
        expires_at: float | None,
        actor_id: int,
        now: float,
    ) -> None:
        await self._backend.run(settings.ban, guild_id, user_id, reason, expires_at, actor_id, now)

    async def unban(self, guild_id: int, user_id: int, actor_id: int, now: float) -> bool:
        return await self._backend.run(settings.unban, guild_id, user_id, actor_id, now)

    async def bans(self, guild_id: int, now: float) -> list[BanEntry]:
        return await self._backend.run(settings.bans, guild_id, now)

    async def add_rule(self, guild_id: int, kind: str, pattern: str, actor_id: int, now: float) -> PromptRule:
        try:
            return await self._backend.run(settings.add_rule, guild_id, kind, pattern, actor_id, now)
        finally:
            self._rules_changed(guild_id)

    async def remove_rule(self, guild_id: int, rule_id: int, actor_id: int, now: float) -> PromptRule | None:
        try:
            return await self._backend.run(settings.remove_rule, guild_id, rule_id, actor_id, now)
        finally:
            self._rules_changed(guild_id)

    def _rules_changed(self, guild_id: int) -> None:
        self._rule_changes[guild_id] = self._rule_changes.get(guild_id, 0) + 1

    async def rules(self, guild_id: int) -> list[PromptRule]:
        return await self._backend.run(settings.rules, guild_id)

    async def rules_if_changed(
        self, guild_id: int, known: tuple[object, ...] | None
    ) -> tuple[tuple[object, ...], list[PromptRule] | None]:
        """The rules' signature, and the rules if it differs from `known`. On SQLite every rule change
        goes through this object (one process owns the file), so a signature read after the last
        change made here is still true and needs no trip to the database thread: that hand-off was
        half of a rule check's time. PostgreSQL is shared with other processes and is always asked."""
        changes = self._rule_changes.get(guild_id, 0)
        if self.exclusive and known is not None and self._rules_seen.get(guild_id) == (known, changes):
            return known, None
        signature, rules = await self._backend.run(settings.rules_if_changed, guild_id, known)
        if self.exclusive:
            # Counted before the read: a change that ends while it runs makes this entry stale.
            self._rules_seen[guild_id] = (signature, changes)
        return signature, rules

    async def admin_log(self, guild_id: int, limit: int = 50) -> list[AdminEntry]:
        return await self._backend.run(settings.admin_log, guild_id, limit)

    # -- server styles and members' own settings -----------------------------------------------------

    async def add_style(self, guild_id: int, style: Style, actor_id: int, now: float) -> bool:
        return await self._backend.run(styles.add_style, guild_id, style, actor_id, now)

    async def remove_style(self, guild_id: int, name: str, actor_id: int, now: float) -> Style | None:
        return await self._backend.run(styles.remove_style, guild_id, name, actor_id, now)

    async def styles(self, guild_id: int) -> list[Style]:
        return await self._backend.run(styles.styles, guild_id)

    async def style(self, guild_id: int, name: str) -> Style | None:
        return await self._backend.run(styles.style, guild_id, name)

    async def request_defaults(self, guild_id: int, user_id: int, style_name: str | None) -> RequestDefaults:
        return await self._backend.run(styles.request_defaults, guild_id, user_id, style_name)

    async def member_settings(self, guild_id: int, user_id: int) -> MemberSettings:
        return await self._backend.run(styles.member_settings, guild_id, user_id)

    async def save_member_settings(
        self, guild_id: int, user_id: int, now: float, **changes: str | None
    ) -> MemberSettings:
        return await self._backend.run(styles.save_member_settings, guild_id, user_id, changes, now)


__all__ = [
    "EXPORT_COLUMNS",
    "HISTORY_COUNT_CAP",
    "MIGRATIONS",
    "AdminEntry",
    "BanEntry",
    "Facets",
    "GalleryFilter",
    "GalleryImage",
    "PersonalBan",
    "PersonalStats",
    "QuotaOverview",
    "Stats",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "UsageSummary",
    "database_label",
    "migrate",
    "open_store",
]
