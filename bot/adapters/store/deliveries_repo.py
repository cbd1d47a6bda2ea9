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
        " WHERE job_id = :job ORDER BY image_index",
        {"job": job_id},
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


class Deliveries(Repository):
    """Each image's way to its requester: `store.deliveries`."""

    of = call(deliveries_of)
    intend = call(intend)
    settle = call(settle)
