"""The deliveries repository: each image's way to its requester, written before it is sent.

One row per image of a job (`image_index` from 1; several images in one message share the route and the
message id). The row's state says what is known:

- `sending`: the intent, written before the image goes out on `route`. Found after a crash, a take-over or
  a refused record, it means "look on that route before sending anything".
- `sent`: Discord accepted it; `message_id` (and `channel_id`) say where it is.
- `refused`: Discord refused it (nothing arrived); another route may be tried.
- `unconfirmed`: it may have arrived on a route that cannot be searched afterwards (a message only the
  requester sees, a personal-use follow-up). It is never sent again; the requester is told once.
- `told`: the requester was told that it may not have reached them.

A request of several images shows them in one message. That message has a row of its own: `job_id` is
the request's id (its first job's), `image_index` is 0 (`MESSAGE`), `route`, `message_id` and
`channel_id` say where the message is once it exists. Its `state` is the claim that serialises the
message's edits across processes: `composing:<owner>` while one process composes an edit (since
`updated_at`), `shown` otherwise. A claim lasts the store's lease: a process killed while holding it
lets it go after that long (at once on SQLite, where the process that held it is gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.adapters.store.interface import Session
from bot.adapters.store.repository import Repository, call
from bot.adapters.store.statements import listed

SENDING = "sending"
SENT = "sent"
REFUSED = "refused"
UNCONFIRMED = "unconfirmed"
TOLD = "told"
# A row in one of these states stands for an image that may be with its requester: nothing more is sent.
SETTLED_OR_PENDING = (SENDING, SENT, UNCONFIRMED, TOLD)


MESSAGE = 0  # the image_index of a request's message row
COMPOSING = "composing"  # state prefix of a held claim: "composing:<owner>"
SHOWN = "shown"  # the claim is free


@dataclass(frozen=True)
class Delivery:
    job_id: int
    image_index: int
    route: str
    state: str
    message_id: int | None
    channel_id: int | None
    updated_at: float


def deliveries_of(s: Session, job_id: int) -> list[Delivery]:
    """The job's delivery rows, by image."""
    rows = s.rows(
        "SELECT job_id, image_index, route, state, message_id, channel_id, updated_at FROM deliveries"
        " WHERE job_id = :job AND image_index >= 1 ORDER BY image_index",
        {"job": job_id},
    )
    return [Delivery(*row) for row in rows]


def deliveries_of_jobs(s: Session, job_ids: Sequence[int]) -> list[Delivery]:
    """The image rows of several jobs (a request's), by job and image."""
    if not job_ids:
        return []
    marks, ids = listed("job", job_ids)
    rows = s.rows(
        "SELECT job_id, image_index, route, state, message_id, channel_id, updated_at FROM deliveries"
        f" WHERE job_id IN ({marks}) AND image_index >= 1 ORDER BY job_id, image_index",
        ids,
    )
    return [Delivery(*row) for row in rows]


def intend(s: Session, job_id: int, indexes: Sequence[int], route: str, now: float) -> bool:
    """Write the intent to send the images `indexes` on `route`. False (and nothing written) when one of
    them may already be with the requester: the caller must reconcile instead of sending."""
    marks, images = listed("image", indexes)
    states, state_values = listed("state", SETTLED_OR_PENDING)
    with s.write() as tx:
        s.lock(tx, "deliveries", job_id)
        taken = tx.execute(
            f"SELECT COUNT(*) FROM deliveries WHERE job_id = :job AND image_index IN ({marks})"
            f" AND state IN ({states})",
            {"job": job_id, **images, **state_values},
        ).fetchone()
        if taken is not None and int(taken[0]) > 0:
            return False
        for index in indexes:
            tx.execute(
                "INSERT INTO deliveries (job_id, image_index, route, state, updated_at)"
                " VALUES (:job, :image, :route, :state, :now)"
                " ON CONFLICT (job_id, image_index) DO UPDATE SET route = excluded.route,"
                " state = excluded.state, message_id = NULL, channel_id = NULL,"
                " updated_at = excluded.updated_at",
                {"job": job_id, "image": index, "route": route, "state": SENDING, "now": now},
            )
    return True


def settle(
    s: Session,
    job_id: int,
    indexes: Sequence[int],
    state: str,
    now: float,
    *,
    was: Sequence[str] = (SENDING,),
    message_id: int | None = None,
    channel_id: int | None = None,
) -> bool:
    """Move the images `indexes` from one of the states `was` to `state`; False if none was in them
    (another process settled them first)."""
    marks, images = listed("image", indexes)
    states, state_values = listed("was", was)
    with s.write() as tx:
        cursor = tx.execute(
            "UPDATE deliveries SET state = :state, message_id = COALESCE(:message, message_id),"
            " channel_id = COALESCE(:channel, channel_id), updated_at = :now"
            f" WHERE job_id = :job AND image_index IN ({marks}) AND state IN ({states})",
            {
                "state": state,
                "message": message_id,
                "channel": channel_id,
                "now": now,
                "job": job_id,
                **images,
                **state_values,
            },
        )
    return cursor.rowcount > 0


@dataclass(frozen=True)
class RequestMessage:
    """Where a request's one message is: nothing yet (`message_id` None), or on `route`."""

    request_id: int
    route: str | None
    message_id: int | None
    channel_id: int | None
    # When the claim was last let go (None: it was not, its holder died or this is the first claim). A
    # process that let it go at that very time was the last to edit the message: what it left is current.
    released_at: float | None = None


def _claim_is_free(s: Session, state: str, since: float, now: float) -> bool:
    if not state.startswith(COMPOSING):
        return True
    holder = state.partition(":")[2]
    # A process that is gone cannot be composing: on SQLite (one process) an earlier one's claim is void.
    return since <= now - s.lease or (s.exclusive and holder != s.owner)


def claim_message(s: Session, request_id: int, now: float) -> RequestMessage | None:
    """Take the claim on the request's message: only its holder edits it, composing the edit from the
    rows of every job of the request. None when another composition holds it (wait and try again)."""
    with s.write() as tx:
        s.lock(tx, "deliveries", request_id)
        made = tx.execute(
            "INSERT INTO deliveries (job_id, image_index, route, state, updated_at)"
            " VALUES (:req, :message, '', :shown, :now) ON CONFLICT (job_id, image_index) DO NOTHING",
            {"req": request_id, "message": MESSAGE, "shown": SHOWN, "now": now},
        ).rowcount
        row = tx.execute(
            "SELECT route, state, message_id, channel_id, updated_at FROM deliveries"
            " WHERE job_id = :req AND image_index = :message",
            {"req": request_id, "message": MESSAGE},
        ).fetchone()
        assert row is not None
        route, state, message_id, channel_id, since = row
        if not _claim_is_free(s, str(state), float(since), now):
            return None
        tx.execute(
            "UPDATE deliveries SET state = :state, updated_at = :now"
            " WHERE job_id = :req AND image_index = :message",
            {"state": f"{COMPOSING}:{s.owner}", "now": now, "req": request_id, "message": MESSAGE},
        )
    released = float(since) if state == SHOWN and not made else None
    return RequestMessage(request_id, route or None, message_id, channel_id, released)


def release_message(
    s: Session,
    request_id: int,
    now: float,
    *,
    route: str | None = None,
    message_id: int | None = None,
    channel_id: int | None = None,
) -> bool:
    """Let the claim go, recording where the message is when it was just made (or moved). False if
    this process no longer held it (it ran out and another took it)."""
    with s.write() as tx:
        cursor = tx.execute(
            "UPDATE deliveries SET state = :shown, updated_at = :now, route = COALESCE(:route, route),"
            " message_id = COALESCE(:mid, message_id), channel_id = COALESCE(:cid, channel_id)"
            " WHERE job_id = :req AND image_index = :message AND state = :mine",
            {
                "shown": SHOWN,
                "now": now,
                "route": route,
                "mid": message_id,
                "cid": channel_id,
                "req": request_id,
                "message": MESSAGE,
                "mine": f"{COMPOSING}:{s.owner}",
            },
        )
    return cursor.rowcount > 0


def request_message(s: Session, request_id: int) -> RequestMessage | None:
    """Where the request's message is, without claiming it (None: no row yet)."""
    row = s.row(
        "SELECT route, message_id, channel_id FROM deliveries WHERE job_id = :req AND image_index = :message",
        {"req": request_id, "message": MESSAGE},
    )
    return None if row is None else RequestMessage(request_id, row[0] or None, row[1], row[2])


class Deliveries(Repository):
    """Each image's way to its requester: `store.deliveries`."""

    of = call(deliveries_of)
    of_jobs = call(deliveries_of_jobs)
    claim_message = call(claim_message)
    release_message = call(release_message)
    message = call(request_message)
    intend = call(intend)
    settle = call(settle)
