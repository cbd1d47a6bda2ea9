"""Which routes a job's outcome tries, in order: the one place that knows the delivery rules.

An image goes where its requester chose (the channel, a message only they see, a DM); personal use (the
app installed to the member's account) answers through the interaction only; when a route is refused, the
next one takes it, so that an image is never lost. A private image goes public only when Discord refused
every private way, never when it is merely unknown whether it arrived.
"""

from __future__ import annotations

from bot.core.models import Job
from bot.core.policy.styles import DELIVERY_EPHEMERAL, PRIVATE_DELIVERIES
from bot.discord.delivery_routes import CHANNEL, EPHEMERAL, FOLLOWUP, STATUS, DmRoute, Route


def _status_editable(job: Job, now: float) -> bool:
    return job.message_id is not None and job.token_usable(now)


def image_routes(job: Job, now: float) -> list[Route]:
    """Where a finished image is tried, first to last."""
    token = job.token_usable(now)
    routes: list[Route] = []
    if job.is_personal:
        # The bot may have no access to the channel at all (a server it is not in, a group DM): a
        # follow-up (the requester is notified), else the status message itself, else a DM.
        routes += [FOLLOWUP] if token else []
        routes += [STATUS] if _status_editable(job, now) else []
        routes += [DmRoute("late")] if job.user_id is not None else []
        return routes
    if job.deliver_to in PRIVATE_DELIVERIES and job.user_id is not None:
        private: list[Route] = [DmRoute("private")]
        if token:  # a message only they see, while the interaction lives: before or after the DM
            private.insert(0 if job.deliver_to == DELIVERY_EPHEMERAL else 1, EPHEMERAL)
        routes += private
    routes += [CHANNEL] if job.channel_id is not None else []
    routes += [STATUS] if _status_editable(job, now) else []
    if job.user_id is not None and not any(isinstance(r, DmRoute) for r in routes):
        routes.append(DmRoute("refused"))
    return routes


def notice_routes(job: Job, now: float) -> list[Route]:
    """Where the news of a job that ended without an image is tried: the status message, else the
    channel (personal use: a DM), else a DM."""
    routes: list[Route] = [STATUS] if _status_editable(job, now) else []
    if job.is_personal:
        return routes + ([DmRoute("late")] if job.user_id is not None else [])
    routes += [CHANNEL] if job.channel_id is not None else []
    return routes + ([DmRoute("refused")] if job.user_id is not None else [])
