"""The jobs repository: everything needed to finish a job after a restart, and the leases that keep
two processes from working on the same job. Each function is one repository call (at most one write
transaction) and runs with a `Session` on either backend."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from bot.adapters.store import gallery_repo
from bot.adapters.store.interface import Session, Tx
from bot.adapters.store.repository import Repository, call
from bot.adapters.store.statements import indexed_by, listed, skip_locked
from bot.core.models import MAX_FOLLOWUPS, ImageRequest, Job, JobStatus, Origin
from bot.core.runner.ports import PollRecord

_RESUMABLE = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.COMPLETED)
_DONE_OK = (JobStatus.COMPLETED, JobStatus.DELIVERED)
_UNFINISHED = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING)
_ENDED = (JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED, JobStatus.UNKNOWN)
# /history counts a member's posted images up to this many (delivered_requests: the requests among
# them); beyond it, the count says "more than".
HISTORY_COUNT_CAP = 10_000
# How long a process holds a job it submits or delivers, unless the store is opened with another
# lease (JOB_LEASE_SECONDS). A live process renews the leases of the jobs it works on (the runner,
# every quarter lease); a process that dies holding a job lets it go after this long.
WORK_LEASE = 60.0


def job_row(
    request: ImageRequest, origin: Origin, now: float, owner: str, lease: float = WORK_LEASE
) -> dict[str, Any]:
    return {
        "source": origin.source,
        "status": JobStatus.QUEUED.value,
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
        "reference_urls": json.dumps(list(request.reference_urls)),
        "has_refs": 1 if request.reference_urls else 0,
        "guild_id": origin.guild_id,
        "channel_id": origin.channel_id,
        "user_id": origin.user_id,
        "interaction_id": origin.interaction_id,
        "application_id": origin.application_id,
        "interaction_token": origin.interaction_token,
        "token_expires_at": origin.token_expires_at,
        "message_id": origin.message_id,
        "context": origin.context,
        "place_guild_id": origin.place_guild_id,
        "followups_used": 0,
        "style": request.style,
        "style_text": request.style_text,
        "deliver_to": origin.deliver_to,
        "locale": origin.locale,
        "guild_locale": origin.guild_locale,
        "media": request.media,
        "video_seconds": request.video_seconds,
        "video_resolution": request.video_resolution,
        "source_job_id": request.source_job_id,
        "source_image_index": request.source_image_index,
        "created_at": now,
        "poll_count": 0,
        "poll_errors": 0,
        # The process that writes a job submits it.
        "lease_owner": owner,
        "leased_until": now + lease,
    }


def read_job(s: Session | Tx, job_id: int) -> Job:
    rows = s.dicts("SELECT * FROM jobs WHERE id = :id", {"id": job_id})
    if not rows:
        raise LookupError(job_id)
    return Job.from_row(rows[0])


# -- writes ---------------------------------------------------------------------------------------


def create_job(s: Session, request: ImageRequest, origin: Origin, now: float) -> Job:
    """A job outside any quota (terminal, benchmark): written QUEUED before anything is sent."""
    with s.write() as tx:
        job_id = tx.insert("jobs", job_row(request, origin, now, s.owner, s.lease))
        return read_job(tx, job_id)


def update_job(s: Session, job_id: int, values: dict[str, Any]) -> None:
    with s.write() as tx:
        tx.update("jobs", job_id, values)


def set_message_id(s: Session, job_id: int, message_id: int) -> None:
    update_job(s, job_id, {"message_id": message_id})


def mark_cancelled_by(s: Session, job_id: int, user_id: int) -> None:
    update_job(s, job_id, {"cancelled_by": user_id})


def mark_result_deleted(s: Session, job_id: int, now: float) -> None:
    """The bot's image message was deleted; the job and usage rows stay."""
    update_job(s, job_id, {"result_deleted_at": now})


def set_followups(s: Session, job_id: int, count: int) -> None:
    update_job(s, job_id, {"followups_used": count})


def mark_requeued(s: Session, job_id: int) -> bool:
    """A submit that certainly did not reach the API waits to be retried. False if cancelled."""
    return move(s, job_id, JobStatus.SUBMITTING, JobStatus.QUEUED)


def mark_submitting(s: Session, job_id: int) -> bool:
    """The submit is about to be sent. False if the job was cancelled before that."""
    return move(s, job_id, JobStatus.QUEUED, JobStatus.SUBMITTING)


def use_followup(s: Session, job_id: int) -> bool:
    """Count one follow-up message for the job's interaction, if fewer than MAX_FOLLOWUPS were sent:
    counted before sending, so a retried delivery can never go past Discord's limit."""
    with s.write() as tx:
        cursor = tx.execute(
            "UPDATE jobs SET followups_used = COALESCE(followups_used, 0) + 1"
            " WHERE id = :id AND COALESCE(followups_used, 0) < :most",
            {"id": job_id, "most": MAX_FOLLOWUPS},
        )
    return cursor.rowcount > 0


def move(s: Session, job_id: int, source: JobStatus, target: JobStatus) -> bool:
    """Change the status only if it still is `source`: a cancel in between wins."""
    with s.write() as tx:
        cursor = tx.execute(
            "UPDATE jobs SET status = :target WHERE id = :id AND status = :source",
            {"target": target.value, "id": job_id, "source": source.value},
        )
    return cursor.rowcount > 0


def _lease_free(s: Session) -> str:
    """SQL (parameters :owner and :now) true for rows no other live process holds."""
    if s.exclusive:
        return "(:owner IS NOT NULL AND :now IS NOT NULL)"
    return "(lease_owner IS NULL OR lease_owner = :owner OR leased_until IS NULL OR leased_until <= :now)"


def reset_leases(s: Session, source: str, now: float) -> None:
    """After a restart, poll every running job at once, except those another live process holds."""
    with s.write() as tx:
        tx.execute(
            "UPDATE jobs SET next_poll_at = :now, lease_owner = NULL, leased_until = NULL"
            f" WHERE source = :source AND status = :running AND next_poll_at > :now AND {_lease_free(s)}",
            {"now": now, "source": source, "running": JobStatus.RUNNING.value, "owner": s.owner},
        )


def release_leases(s: Session, now: float) -> int:
    """A clean stop: every job this process holds is free for the others at once (a running job
    it had claimed for a poll is due now). The leases end rather than vanish, so the others'
    periodic `take_over_jobs` finds them. Returns how many."""
    with s.write() as tx:
        cursor = tx.execute(
            "UPDATE jobs SET leased_until = :now, next_poll_at = CASE"
            " WHEN status = :running AND next_poll_at > :now THEN :now ELSE next_poll_at END"
            " WHERE lease_owner = :owner",
            {"now": now, "running": JobStatus.RUNNING.value, "owner": s.owner},
        )
    return cursor.rowcount


def mark_running(s: Session, job_id: int, task_id: str, submitted_at: float, next_poll_at: float) -> bool:
    """The API took the request. False if the job was cancelled meanwhile."""
    with s.write() as tx:
        cursor = tx.execute(
            # Between its polls a running job is in nobody's hands (as after `record_poll`): the
            # submitter's lease ends here, and whoever is free polls it when it is due.
            "UPDATE jobs SET status = :running, task_id = :task, submitted_at = :submitted,"
            " next_poll_at = :next, api_status = 'pending', lease_owner = NULL, leased_until = NULL"
            " WHERE id = :id AND status IN (:submitting, :queued)",
            {
                "running": JobStatus.RUNNING.value,
                "task": task_id,
                "submitted": submitted_at,
                "next": next_poll_at,
                "id": job_id,
                "submitting": JobStatus.SUBMITTING.value,
                "queued": JobStatus.QUEUED.value,
            },
        )
        # The task id is worth keeping even for a cancelled job: the provider may bill it.
        ids = {"task": task_id, "id": job_id}
        tx.execute("UPDATE jobs SET task_id = :task WHERE id = :id AND task_id IS NULL", ids)
        tx.execute(
            "UPDATE usage SET task_id = :task WHERE id = (SELECT usage_id FROM jobs WHERE id = :id)", ids
        )
    return cursor.rowcount > 0


def record_poll(
    s: Session,
    job_id: int,
    api_status: str | None,
    trace_id: str | None,
    next_poll_at: float,
    poll_errors: int,
) -> bool:
    """False if the job is no longer running (cancelled meanwhile). The poll's lease ends."""
    with s.write() as tx:
        if s.dialect == "postgresql":
            # Poll bookkeeping is the bulk of all writes and losing the last few in a server crash
            # costs one early poll: it need not wait for the disk.
            tx.execute("SET LOCAL synchronous_commit = off")
        cursor = tx.execute(
            _RECORD_POLL, _record_params(job_id, api_status, trace_id, next_poll_at, poll_errors)
        )
    return cursor.rowcount > 0


_RECORD_POLL = (
    "UPDATE jobs SET poll_count = poll_count + 1, next_poll_at = :next, poll_errors = :errors,"
    " api_status = COALESCE(:api_status, api_status), trace_id = COALESCE(:trace, trace_id),"
    " lease_owner = NULL, leased_until = NULL WHERE id = :id AND status = :running"
)


def _record_params(
    job_id: int, api_status: str | None, trace_id: str | None, next_poll_at: float, poll_errors: int
) -> dict[str, Any]:
    return {
        "next": next_poll_at,
        "errors": poll_errors,
        "api_status": api_status,
        "trace": trace_id,
        "id": job_id,
        "running": JobStatus.RUNNING.value,
    }


def record_polls(s: Session, records: list[PollRecord]) -> set[int]:
    """Many polls' outcomes in one transaction (`record_poll` for each); returns the ids of the jobs
    still running, whose record was written. Every poll's claim ends."""
    running: set[int] = set()
    with s.write() as tx:
        if s.dialect == "postgresql":
            tx.execute("SET LOCAL synchronous_commit = off")  # as in record_poll
        for record in records:
            cursor = tx.execute(
                _RECORD_POLL,
                _record_params(
                    record.job_id, record.api_status, record.trace_id, record.next_poll_at, record.poll_errors
                ),
            )
            if cursor.rowcount > 0:
                running.add(record.job_id)
    return running


def mark_completed(
    s: Session, job_id: int, result_urls: list[str], finished_at: float, trace_id: str | None
) -> bool:
    """The task finished with images. False if the job was cancelled meanwhile. The process that saw
    it finish holds the job while it delivers."""
    with s.write() as tx:
        cursor = tx.execute(
            "UPDATE jobs SET status = :completed, result_urls = :urls, finished_at = :finished,"
            " next_poll_at = NULL, poll_count = poll_count + 1, api_status = 'completed',"
            " trace_id = COALESCE(:trace, trace_id), lease_owner = :owner, leased_until = :until"
            " WHERE id = :id AND status = :running",
            {
                "completed": JobStatus.COMPLETED.value,
                "urls": json.dumps(result_urls),
                "finished": finished_at,
                "trace": trace_id,
                "owner": s.owner,
                "until": finished_at + s.lease,
                "id": job_id,
                "running": JobStatus.RUNNING.value,
            },
        )
        if cursor.rowcount == 0:
            return False
        tx.execute(
            "UPDATE usage SET outcome = 'completed', duration = :finished - created_at"
            " WHERE id = (SELECT usage_id FROM jobs WHERE id = :id)",
            {"finished": finished_at, "id": job_id},
        )
    return True


def mark_ended(
    s: Session, job_id: int, status: JobStatus, error: str, finished_at: float, *, refund: bool = True
) -> bool:
    """A job ended without images (failed, timed out, cancelled, outcome unknown). Its use is
    refunded (and a one-off credit given back) unless `refund` is False. False if the job had
    already ended or finished: the first ending wins."""
    with s.write() as tx:
        return _end_in(s, tx, job_id, status, error, finished_at, refund)


def mark_video_refused(s: Session, job_id: int, error: str, finished_at: float) -> bool:
    """A finished video whose file proved unusable (not a video, too large, an internal address):
    it was not made after all, so the job fails from `completed` and is refunded like any failure."""
    with s.write() as tx:
        return _end_in(s, tx, job_id, JobStatus.FAILED, error, finished_at, True, (JobStatus.COMPLETED,))


def _end_in(
    s: Session,
    tx: Tx,
    job_id: int,
    status: JobStatus,
    error: str,
    finished_at: float,
    refund: bool,
    ending: tuple[JobStatus, ...] = _UNFINISHED,
) -> bool:
    outcome = {JobStatus.TIMED_OUT: "timed_out", JobStatus.CANCELLED: "cancelled"}.get(status, "failed")
    unfinished, states = listed("state", [st.value for st in ending])
    cursor = tx.execute(
        "UPDATE jobs SET status = :status, error = :error, finished_at = :finished, next_poll_at = NULL,"
        f" lease_owner = :owner, leased_until = :until WHERE id = :id AND status IN ({unfinished})",
        {
            "status": status.value,
            "error": error,
            "finished": finished_at,
            "owner": s.owner,
            "until": finished_at + s.lease,
            "id": job_id,
            **states,
        },
    )
    if cursor.rowcount == 0:
        return False
    row = tx.execute(
        "SELECT u.id, u.guild_id, u.user_id, u.counted, u.used_credit FROM usage u"
        " JOIN jobs j ON j.usage_id = u.id WHERE j.id = :id",
        {"id": job_id},
    ).fetchone()
    if row is None:
        return True
    usage_id, guild_id, user_id, counted, used_credit = row
    give_back = refund and counted
    tx.execute(
        "UPDATE usage SET outcome = :outcome, duration = :finished - created_at, counted = :counted,"
        " used_credit = :credit WHERE id = :id",
        {
            "outcome": outcome,
            "finished": finished_at,
            "counted": 0 if give_back else counted,
            "credit": 0 if give_back else used_credit,
            "id": usage_id,
        },
    )
    if give_back and used_credit:
        tx.execute(
            # The credits this task used (units since revision 0014; older rows hold 1).
            "UPDATE user_quotas SET credits = credits + :credit WHERE guild_id = :guild AND user_id = :user",
            {"credit": used_credit, "guild": guild_id, "user": user_id},
        )
    return True


def mark_delivered(
    s: Session,
    job_id: int,
    *,
    delivery: str,
    result_message_id: int | None,
    now: float,
    result_channel_id: int | None = None,
) -> None:
    """The outcome reached the requester. The interaction token is dropped: it is no longer needed."""
    with s.write() as tx:
        tx.execute(
            "UPDATE jobs SET status = CASE WHEN status = :completed THEN :delivered ELSE status END,"
            " delivered_at = :now, delivery = :delivery,"
            " result_message_id = COALESCE(:message, result_message_id),"
            " result_channel_id = COALESCE(:channel, result_channel_id), interaction_token = NULL,"
            " lease_owner = NULL, leased_until = NULL WHERE id = :id",
            {
                "completed": JobStatus.COMPLETED.value,
                "delivered": JobStatus.DELIVERED.value,
                "now": now,
                "delivery": delivery,
                "message": result_message_id,
                "channel": result_channel_id,
                "id": job_id,
            },
        )
        # A posted image is found by its prompt's words in the web gallery from now on.
        gallery_repo.index_posted(tx, job_id)


def launch(s: Session, job_id: int | Sequence[int], message_id: int | None, followups: int) -> None:
    """The requester was acknowledged: the status message and the follow-ups it used, together, for
    one job or every job of a request (one transaction)."""
    values: dict[str, Any] = {}
    if message_id is not None:
        values["message_id"] = message_id
    if followups:
        values["followups_used"] = followups
    with s.write() as tx:
        for one in [job_id] if isinstance(job_id, int) else job_id:
            tx.update("jobs", one, values)


def cancel(s: Session, job_id: int, by_user: int, reason: str, now: float, *, refund: bool) -> bool:
    """End an unfinished job as cancelled, record who cancelled it and that the requester was told,
    in one transaction: a crash leaves it either running or cancelled and told, never told twice.
    False if it had already ended or finished."""
    with s.write() as tx:
        if not _end_in(s, tx, job_id, JobStatus.CANCELLED, reason, now, refund):
            return False
        tx.execute(
            "UPDATE jobs SET cancelled_by = :by, delivered_at = :now, delivery = 'cancelled',"
            " interaction_token = NULL, lease_owner = NULL, leased_until = NULL WHERE id = :id",
            {"by": by_user, "now": now, "id": job_id},
        )
    return True


def mark_undeliverable(s: Session, job_id: int, *, retries: int, now: float) -> int:
    """Telling the requester failed again; returns how many times it has now failed. The job keeps
    its status for a later attempt while that count is within `retries`; past it, it is closed
    as `undeliverable` (never tried again, its token dropped)."""
    with s.write() as tx:
        row = tx.execute(
            "UPDATE jobs SET delivery = 'undeliverable', delivery_attempts ="
            " COALESCE(delivery_attempts, 0) + 1 WHERE id = :id RETURNING delivery_attempts",
            {"id": job_id},
        ).fetchone()
        attempts = 0 if row is None else int(row[0])
        if attempts > retries:
            tx.execute(
                "UPDATE jobs SET delivered_at = :now, interaction_token = NULL, lease_owner = NULL,"
                " leased_until = NULL WHERE id = :id",
                {"now": now, "id": job_id},
            )
    return attempts


def abandon(s: Session, job_id: int, reason: str, now: float) -> None:
    """An admitted job that could not even be acknowledged: ended as failed (so refunded) and
    closed, with nobody left to tell, in one transaction."""
    with s.write() as tx:
        _end_in(s, tx, job_id, JobStatus.FAILED, reason, now, True)
        tx.execute(
            "UPDATE jobs SET delivered_at = :now, delivery = 'none', interaction_token = NULL,"
            " lease_owner = NULL, leased_until = NULL WHERE id = :id",
            {"now": now, "id": job_id},
        )


def claim_due_jobs(s: Session, source: str, now: float, limit: int, lease: float) -> list[Job]:
    """Running jobs whose poll is due, leased for `lease` seconds so no other pass, and no other
    process, takes them. Rows another transaction is claiming right now are skipped, not waited for."""
    with s.write() as tx:
        rows = tx.dicts(
            "UPDATE jobs SET next_poll_at = :until, lease_owner = :owner, leased_until = :until WHERE id IN ("
            " SELECT id FROM jobs WHERE source = :source AND status = :running AND next_poll_at <= :now"
            f" ORDER BY next_poll_at LIMIT :limit{skip_locked(s.dialect)}) RETURNING *",
            {
                "until": now + lease,
                "owner": s.owner,
                "source": source,
                "running": JobStatus.RUNNING.value,
                "now": now,
                "limit": limit,
            },
        )
    return sorted((Job.from_row(row) for row in rows), key=lambda job: (job.next_poll_at or 0.0, job.id))


def jobs_to_resume(
    s: Session, source: str, *, now: float | None = None, lease: float = WORK_LEASE
) -> list[Job]:
    """Jobs a previous process left half-way: not sent, sent with unknown outcome, finished but
    not delivered, or ended without the requester being told. Jobs another live process holds are
    left to it; the ones returned are now held by this process."""
    now = time.time() if now is None else now
    marks, states = listed("state", [st.value for st in (*_RESUMABLE, *_ENDED)])
    with s.write() as tx:
        rows = tx.dicts(
            "UPDATE jobs SET lease_owner = :owner, leased_until = :until WHERE id IN ("
            f" SELECT id FROM jobs WHERE source = :source AND delivered_at IS NULL AND status IN ({marks})"
            f" AND {_lease_free(s)}{skip_locked(s.dialect)}) RETURNING *",
            {"owner": s.owner, "until": now + lease, "source": source, "now": now, **states},
        )
    return sorted((Job.from_row(row) for row in rows), key=lambda job: job.id)


def renew_leases(s: Session, held: list[int], polling: list[int], now: float, lease: float) -> int:
    """This process is still working on these jobs: its leases on them last `lease` seconds from
    now, and a poll still in flight keeps its claim (`next_poll_at`) as long. Rows another process
    has taken meanwhile are left alone. Returns how many rows were renewed."""
    renewed = 0
    # Rows are locked in id order, as `record_polls` takes them: two multi-row writes that lock in
    # different orders can deadlock.
    in_order = "" if s.dialect == "sqlite" else " ORDER BY id FOR UPDATE"
    with s.write() as tx:
        if held:
            marks, ids = listed("id", held)
            renewed += tx.execute(
                "UPDATE jobs SET leased_until = :until WHERE id IN (SELECT id FROM jobs"
                f" WHERE lease_owner = :owner AND id IN ({marks}){in_order})",
                {"until": now + lease, "owner": s.owner, **ids},
            ).rowcount
        if polling:
            marks, ids = listed("id", polling)
            renewed += tx.execute(
                "UPDATE jobs SET next_poll_at = :until, leased_until = :until WHERE id IN ("
                " SELECT id FROM jobs WHERE lease_owner = :owner AND status = :running"
                f" AND next_poll_at > :now AND id IN ({marks}){in_order})",
                {
                    "until": now + lease,
                    "owner": s.owner,
                    "running": JobStatus.RUNNING.value,
                    "now": now,
                    **ids,
                },
            ).rowcount
    return renewed


def take_over_jobs(s: Session, source: str, now: float, lease: float, limit: int = 100) -> list[Job]:
    """Work a process left when it died (or stopped), whose lease has run out: queued, being sent,
    finished but not delivered, or ended without the requester told, and running jobs whose poll it
    had claimed. The rows returned are now held by this process (a running one claimed for a poll,
    to be polled at once: its take-over does not wait its turn behind the due polls). Only rows that
    carry a lease are looked at, on the partial index jobs_lease_owner, so a periodic call costs
    little however many jobs are in flight or the jobs table holds. (Rows without any lease, e.g.
    copied by migrate-db, are taken by `jobs_to_resume` at start-up.)"""
    marks, states = listed("state", [st.value for st in (*_RESUMABLE, *_ENDED)])
    with s.write() as tx:
        rows = tx.dicts(
            "UPDATE jobs SET lease_owner = :owner, leased_until = :until,"
            " next_poll_at = CASE WHEN status = :running THEN :until ELSE next_poll_at END WHERE id IN ("
            " SELECT id FROM jobs WHERE lease_owner IS NOT NULL AND leased_until <= :now AND source = :source"
            f" AND delivered_at IS NULL AND (status IN ({marks})"
            " OR status = :running AND next_poll_at <= :now)"
            f" ORDER BY id LIMIT :limit{skip_locked(s.dialect)}) RETURNING *",
            {
                "owner": s.owner,
                "until": now + lease,
                "now": now,
                "source": source,
                "limit": limit,
                "running": JobStatus.RUNNING.value,
                **states,
            },
        )
    return sorted((Job.from_row(row) for row in rows), key=lambda job: job.id)


# -- reads ----------------------------------------------------------------------------------------


def get_job(s: Session, job_id: int) -> Job | None:
    try:
        return read_job(s, job_id)
    except LookupError:
        return None


def _server(guild_id: int | None) -> tuple[str, dict[str, Any]]:
    """The WHERE term for one server's jobs, or (None) for personal use, which belongs to no server."""
    return ("guild_id = :guild", {"guild": guild_id}) if guild_id is not None else ("guild_id IS NULL", {})


def unfinished_jobs(s: Session, guild_id: int | None, user_id: int | None, limit: int = 25) -> list[Job]:
    """Jobs still on their way, oldest first: one member's, or the whole guild's (guild None: the
    member's personal use)."""
    marks, states = listed("state", [st.value for st in (*_UNFINISHED, JobStatus.COMPLETED)])
    who = "AND user_id = :user" if user_id is not None else ""
    server, server_params = _server(guild_id)
    rows = s.dicts(
        f"SELECT * FROM jobs WHERE {server} {who} AND status IN ({marks}) AND delivered_at IS NULL"
        " ORDER BY id LIMIT :limit",
        {**server_params, "user": user_id, **states, "limit": limit},
    )
    return [Job.from_row(row) for row in rows]


MAX_REQUEST_SIZE = 4  # the most images one request holds (/imagine count)


class RequestsPage(NamedTuple):
    """A page of /history: its requests, each with all its jobs in its order; how many requests have a
    posted image in all (`capped`: at least that many, the count stopped at HISTORY_COUNT_CAP posted
    images); and whether older requests follow."""

    groups: list[list[Job]]
    total: int
    capped: bool
    more: bool


def delivered_requests(
    s: Session,
    guild_id: int | None,
    user_id: int,
    limit: int,
    *,
    older_than: int | None = None,
    newer_than: int | None = None,
) -> RequestsPage:
    """A page of a member's posted requests, newest first (the images not posted included, to show
    their state), and how many there are, a request of four images being one. Keyset-paged by request
    id (its first job's id, the smallest): the page just older than request `older_than`, or just newer
    than job `newer_than`, or the newest page."""
    # The WHERE matches the partial index jobs_history_posts, so the count and the page stay on it.
    server, server_params = _server(guild_id)
    where = f"{server} AND user_id = :user AND status = 'delivered' AND result_message_id IS NOT NULL"
    posts = "jobs" + indexed_by(s.dialect, "jobs_history_posts")
    params = {**server_params, "user": user_id, "cap": HISTORY_COUNT_CAP}
    # The count reads at most HISTORY_COUNT_CAP posted images (the LIMIT comes before the DISTINCT, so
    # neither backend reads more), and the request of each, all from the index (revision 0015).
    counted = s.row(
        "SELECT COUNT(DISTINCT request), COUNT(*) FROM (SELECT COALESCE(request_id, id) AS request"
        f" FROM {posts} WHERE {where} LIMIT :cap) AS h",
        params,
    )
    total, images = (int(counted[0]), int(counted[1])) if counted else (0, 0)
    if newer_than is not None:
        page, params["edge"] = "AND id > :edge ORDER BY id ASC LIMIT :limit", newer_than
    elif older_than is not None:
        page, params["edge"] = "AND id < :edge ORDER BY id DESC LIMIT :limit", older_than
    else:
        page = "ORDER BY id DESC LIMIT :limit"
    # One row more than the page first (requests of one image: as cheap as a page of images); if
    # requests of several images make fewer than a page of requests of them, as many as can hold one.
    for fetch in (limit + 1, limit * MAX_REQUEST_SIZE + 1):
        rows = s.dicts(f"SELECT * FROM {posts} WHERE {where} {page}", {**params, "limit": fetch})
        keys: list[int] = []
        by_key: dict[int, list[Job]] = {}
        for row in rows:
            job = Job.from_row(row)
            if job.request not in by_key:
                keys.append(job.request)
                by_key[job.request] = []
            by_key[job.request].append(job)
        if len(keys) > limit or len(rows) < fetch:
            break
    more = len(keys) > limit if newer_than is None else True  # paging newer: the page it came from
    keys = keys[:limit]
    if newer_than is not None:
        keys.reverse()
    # A request of several images: all its jobs, posted or not (on the jobs_request index).
    several = [key for key in keys if by_key[key][0].request_size > 1]
    if several:
        marks, ids = listed("key", several)
        for key in several:
            by_key[key] = []
        for row in s.dicts(
            f"SELECT * FROM jobs WHERE request_id IN ({marks}) ORDER BY request_index, id", ids
        ):
            job = Job.from_row(row)
            by_key[job.request].append(job)
    groups = [sorted(by_key[key], key=lambda j: j.request_index) for key in keys]
    return RequestsPage(groups, total, images >= HISTORY_COUNT_CAP, more)


def request_jobs(s: Session, request_id: int) -> list[Job]:
    """The jobs of one request, in its order (1..N); a request of one is its job alone."""
    rows = s.dicts(
        "SELECT * FROM jobs WHERE request_id = :req ORDER BY request_index, id", {"req": request_id}
    )
    if not rows:
        rows = s.dicts("SELECT * FROM jobs WHERE id = :req", {"req": request_id})
    return [Job.from_row(row) for row in rows]


def next_poll_time(s: Session, source: str) -> float | None:
    row = s.row(
        "SELECT MIN(next_poll_at) FROM jobs WHERE source = :source AND status = :running",
        {"source": source, "running": JobStatus.RUNNING.value},
    )
    return None if row is None or row[0] is None else float(row[0])


def running_count(s: Session, source: str) -> int:
    row = s.row(
        "SELECT COUNT(*) FROM jobs WHERE source = :source AND status = :running",
        {"source": source, "running": JobStatus.RUNNING.value},
    )
    return int(row[0]) if row else 0


def recent_durations(
    s: Session, has_refs: bool | None, limit: int = 50, *, media: str = "image"
) -> list[float]:
    """Seconds from submit to finish of the latest successful jobs of one kind, newest first, across
    every process sharing the database. Videos learn apart from images (`media`); `has_refs` None
    takes jobs with and without references alike (a video's kind)."""
    marks, states = listed("state", [st.value for st in _DONE_OK])
    refs = "has_refs IN (0, 1)" if has_refs is None else "has_refs = :refs"
    rows = s.rows(
        f"SELECT finished_at - submitted_at FROM jobs{indexed_by(s.dialect, 'jobs_durations')}"
        f" WHERE {refs} AND finished_at IS NOT NULL AND submitted_at IS NOT NULL"
        f" AND COALESCE(media, 'image') = :media AND status IN ({marks})"
        " ORDER BY finished_at DESC LIMIT :limit",
        {"refs": 1 if has_refs else 0, "media": media, **states, "limit": limit},
    )
    return [float(r[0]) for r in rows if r[0] is not None and r[0] >= 0]


class Jobs(Repository):
    """Jobs and their leases: `store.jobs`."""

    create = call(create_job)
    get = call(get_job)
    launch = call(launch)
    cancel = call(cancel)
    set_message_id = call(set_message_id)
    mark_cancelled_by = call(mark_cancelled_by)
    mark_result_deleted = call(mark_result_deleted)
    set_followups = call(set_followups)
    use_followup = call(use_followup)
    mark_requeued = call(mark_requeued)
    mark_submitting = call(mark_submitting)
    mark_running = call(mark_running)
    record_poll = call(record_poll)
    record_polls = call(record_polls)
    mark_completed = call(mark_completed)
    mark_ended = call(mark_ended)
    mark_video_refused = call(mark_video_refused)
    mark_delivered = call(mark_delivered)
    mark_undeliverable = call(mark_undeliverable)
    abandon = call(abandon)
    unfinished = call(unfinished_jobs)
    of_request = call(request_jobs)
    delivered_requests = call(delivered_requests)
    claim_due = call(claim_due_jobs)
    next_poll_time = call(next_poll_time)
    to_resume = call(jobs_to_resume)
    reset_leases = call(reset_leases)
    renew_leases = call(renew_leases, leases=True)
    release_leases = call(release_leases)
    take_over = call(take_over_jobs, leases=True)
    running_count = call(running_count)
    recent_durations = call(recent_durations)
