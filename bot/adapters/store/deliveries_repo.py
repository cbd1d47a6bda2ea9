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
        " WHERE job_id = ? ORDER BY image_index",
        [job_id],
    )
    return [Delivery(*row) for row in rows]


def intend(s: Session, job_id: int, indexes: Sequence[int], route: str, now: float) -> bool:
    """Write the intent to send the images `indexes` on `route`. False (and nothing written) when one of
    them may already be with the requester: the caller must reconcile instead of sending."""
    marks = ", ".join("?" for _ in indexes)
    with s.write() as tx:
        s.lock(tx, "deliveries", job_id)
        taken = tx.execute(
            f"SELECT COUNT(*) FROM deliveries WHERE job_id = ? AND image_index IN ({marks})"
            f" AND state IN ({', '.join('?' for _ in SETTLED_OR_PENDING)})",
            [job_id, *indexes, *SETTLED_OR_PENDING],
        ).fetchone()
        if taken is not None and int(taken[0]) > 0:
            return False
        for index in indexes:
            tx.execute(
                "INSERT INTO deliveries (job_id, image_index, route, state, updated_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (job_id, image_index) DO UPDATE SET route = excluded.route,"
                " state = excluded.state, message_id = NULL, channel_id = NULL,"
                " updated_at = excluded.updated_at",
                [job_id, index, route, SENDING, now],
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
    marks = ", ".join("?" for _ in indexes)
    with s.write() as tx:
        cursor = tx.execute(
            "UPDATE deliveries SET state = ?, message_id = COALESCE(?, message_id),"
            " channel_id = COALESCE(?, channel_id), updated_at = ?"
            f" WHERE job_id = ? AND image_index IN ({marks}) AND state IN ({', '.join('?' for _ in was)})",
            [state, message_id, channel_id, now, job_id, *indexes, *was],
        )
    return cursor.rowcount > 0
