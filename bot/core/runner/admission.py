"""Admission: the command-side use cases — admit, launch, abandon, cancel, refusals — each one transaction.

Commands (Discord, the terminal) call these through the JobRunner; every write is a job event that the
store makes in a single transaction, so a crash leaves a job either before or after it, never between.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import messages
from bot.core.log_context import job_context
from bot.core.models import ImageRequest, Job, JobStatus, Origin
from bot.core.policy.quotas import DEFAULT_MAX_RUNNING, Decision, Member
from bot.core.policy.rulebook import RuleBook
from bot.core.runner import job_states
from bot.core.runner.shared import Parts
from bot.core.runner.submitting import Submitter
from bot.core.texts import msg, stored

log = logging.getLogger("bot.core.runner")


@dataclass(frozen=True)
class Cancelled:
    """A cancellation that took effect: whether the use was given back, and what the requester reads."""

    refunded: bool
    text: str


class Admission:
    def __init__(self, parts: Parts, submitter: Submitter) -> None:
        self.parts = parts
        self.submitter = submitter
        self.rules = RuleBook(parts.store.settings)

    async def enqueue(self, request: ImageRequest, origin: Origin) -> Job:
        """Write the job, then submit it in the background. The row exists before any HTTP call."""
        p = self.parts
        job = await p.store.jobs.create(request, origin, p.clock.time())
        with job_context(job):
            if p.closing:
                # Shutting down: the row stays QUEUED and the next start submits it.
                log.info("job %s queued during shutdown; it will be submitted after the restart", job.id)
                return job
            log.info("job %s queued (guild %s, user %s)", job.id, job.guild_id, job.user_id)
            self.submitter.start(job)
        return job

    async def admit(
        self,
        request: ImageRequest,
        origin: Origin,
        member: Member,
        default_quota: int,
        *,
        count: int = 1,
        units_per_task: int = 1,
    ) -> tuple[Decision, list[Job]]:
        """Check the prompt rules (off the database thread, outside any transaction), then bans and
        quotas for `count` tasks of `units_per_task` units, and reserve them all in one transaction.
        Admitted jobs (request_index 1..count, one request_id) are written QUEUED but not sent:
        `launch` sends them once the requester has been acknowledged. Refused: no jobs, and
        `Decision.fits` says how many tasks would have fitted."""
        p = self.parts
        rule_match = await self.rules.check(member.guild_id or None, request.full_prompt)
        decision, jobs = await p.store.usage.admit(
            member,
            request,
            origin,
            p.clock.time(),
            default_quota,
            rule_match=rule_match,
            count=count,
            units_per_task=units_per_task,
        )
        for job in jobs:
            p.registry.acknowledging(job.id)
        return decision, jobs

    async def admit_personal(
        self, request: ImageRequest, origin: Origin, limit: int, *, count: int = 1, units_per_task: int = 1
    ) -> tuple[Decision, list[Job]]:
        """Personal use (no server): the operator's ban, the personal daily quota and concurrency,
        checked and reserved for every task in one transaction. No server's prompt rules apply."""
        assert origin.user_id is not None
        p = self.parts
        decision, jobs = await p.store.personal.admit(
            origin.user_id,
            request,
            origin,
            p.clock.time(),
            limit,
            DEFAULT_MAX_RUNNING,
            count=count,
            units_per_task=units_per_task,
        )
        for job in jobs:
            p.registry.acknowledging(job.id)
        return decision, jobs

    async def launch(self, jobs: Job | Sequence[Job], message_id: int | None, *, followups: int = 0) -> None:
        """The requester was acknowledged: record the status message and the follow-ups the
        acknowledgement used on every job of the request (one transaction), then send them all."""
        batch = [jobs] if isinstance(jobs, Job) else list(jobs)
        if not batch:
            return
        with job_context(batch[0]):
            await self._launch(batch, message_id, followups)

    async def _launch(self, jobs: list[Job], message_id: int | None, followups: int) -> None:
        p = self.parts
        try:
            if followups or message_id is not None:
                await p.store.jobs.launch([job.id for job in jobs], message_id, followups)
                for job in jobs:
                    job.followups_used = followups or job.followups_used
                    job.message_id = message_id if message_id is not None else job.message_id
            if p.closing:
                log.info(
                    "request %s admitted during shutdown; its %d job(s) will be submitted after the restart",
                    jobs[0].request,
                    len(jobs),
                )
                return
            for job in jobs:
                self.submitter.start(job)
        finally:
            for job in jobs:
                p.registry.acknowledged(job.id)

    async def abandon(self, jobs: Job | Sequence[Job], reason: str) -> None:
        """Admitted jobs that could not be acknowledged: each refunded, and nobody left to tell."""
        p = self.parts
        batch = [jobs] if isinstance(jobs, Job) else list(jobs)
        try:
            for job in batch:
                with job_context(job):
                    await p.persist(job, "abandon it", functools.partial(self._abandon_one, job, reason))
        finally:
            for job in batch:
                p.registry.acknowledged(job.id)

    async def _abandon_one(self, job: Job, reason: str) -> None:
        await self.parts.store.jobs.abandon(job.id, reason, self.parts.clock.time())

    async def cancel(
        self, job: Job, by_user: int, *, refund: bool | None = None, announce: bool = False
    ) -> Cancelled | None:
        """Stop following a job. The API has no cancel route, so the task may still run (and be
        billed) upstream; the job just ends here. None if it had already finished or ended.

        Without `refund`, the runner decides: nothing was sent yet, or a moderator stopped it, costs
        nothing; otherwise the provider may still bill the task, so it counts unless the guild refunds
        cancellations. With `announce`, the sink shows the cancellation on the job's status message
        (a cancel from elsewhere, e.g. /queue); otherwise the caller shows `Cancelled.text` itself.
        The end, who cancelled and "told" are one transaction: the requester is told exactly once."""
        with job_context(job):
            return await self._cancel(job, by_user, refund, announce)

    async def _cancel(self, job: Job, by_user: int, refund: bool | None, announce: bool) -> Cancelled | None:
        p = self.parts
        if not job_states.allowed(job.status, JobStatus.CANCELLED):
            return None
        by_moderator = by_user != job.user_id
        if refund is None:
            policy = await p.store.settings.guild_policy(job.guild_id) if job.guild_id else None
            refund = (
                job.status is JobStatus.QUEUED or by_moderator or bool(policy and policy.refund_cancelled)
            )
        reason = stored(
            msg("Cancelled by a moderator.") if by_moderator else msg("Cancelled by the requester.")
        )
        now = p.clock.time()
        if not await p.store.jobs.cancel(job.id, by_user, reason, now, refund=refund):
            return None
        p.finished[JobStatus.CANCELLED.value] += 1
        p.durations.dropped(job)
        job_states.advance(job, JobStatus.CANCELLED)
        job.error, job.cancelled_by, job.delivered_at = reason, by_user, now
        p.last_progress.pop(job.id, None)
        log.info("job %s cancelled by %s (refund %s)", job.id, by_user, refund)
        # Shown on the status message, a public message in the server: in the server's language.
        text = messages.cancelled_text(
            job, by_user, now - job.created_at, refunded=refund, locale=job.guild_locale
        )
        show = getattr(p.sink, "show_cancelled", None)  # the terminal and benchmark sinks have none
        if announce and show is not None:
            # In the background: the caller still has to answer its interaction within 3 seconds.
            p.registry.spawn(show(job, text))
        return Cancelled(refunded=refund, text=text)

    async def record_deleted(self, job_id: int) -> None:
        """The job's image message was deleted on Discord; the job and its usage rows stay."""
        await self.parts.store.jobs.mark_result_deleted(job_id, self.parts.clock.time())

    async def log_refusal(
        self,
        origin: Origin,
        *,
        prompt: str,
        aspect_ratio: str | None,
        ref_count: int,
        reason: str,
        detail: str | None,
    ) -> None:
        """A request refused before admission (bad input): in the usage log (never counted) and the
        mod-log. A busy database only costs the usage row; the requester was answered already."""
        p = self.parts
        if (origin.guild_id is not None or origin.is_personal) and origin.user_id is not None:
            try:
                await p.store.usage.log_refusal(
                    guild_id=origin.guild_id,
                    context=origin.context,
                    channel_id=origin.channel_id,
                    user_id=origin.user_id,
                    prompt=prompt,
                    aspect_ratio=aspect_ratio,
                    ref_count=ref_count,
                    reason=reason,
                    detail=detail,
                    now=p.clock.time(),
                )
            except p.store.errors as exc:
                log.warning("could not log a refusal: %s", exc)
        await self.report_refusal(origin, reason=reason, prompt=prompt, detail=None)

    async def report_refusal(self, origin: Origin, *, reason: str, prompt: str, detail: str | None) -> None:
        """A refusal for the guild's mod-log (admission wrote its usage row already). The sink keeps a
        member hammering the command from flooding the channel."""
        modlog = getattr(self.parts.sink, "modlog", None)  # only the Discord sink has a mod-log
        if modlog is None or origin.guild_id is None or origin.user_id is None:
            return
        entry = messages.modlog_refusal(
            origin.user_id, origin.channel_id, reason, prompt, detail, locale=origin.guild_locale
        )
        await modlog(origin.guild_id, entry, throttle=(origin.user_id, reason))
