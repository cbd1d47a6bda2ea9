"""What the requester reads when a job ends without an image: catalog texts, never a raw payload.

The job row keeps the English text (`error`, read by operators too); the sink shows it in the reader's
language (`bot.core.i18n.translate_text` finds the catalog text, or the template it was made from).
"""

from __future__ import annotations

from bot.core.i18n import N_
from bot.core.runner.ports import TaskReport

# The delivery state of a job whose outcome could not be told (every way the sink knows failed).
UNDELIVERABLE = "undeliverable"

MSG_UNAVAILABLE = N_("The image service is unavailable right now. The bot's operator has been told.")
MSG_UNREACHABLE = N_(
    "The image service could not be reached, so nothing was started. Please try again shortly."
)
MSG_BUSY = N_(
    "The image service is too busy right now, so nothing was started. Please try again in a minute."
)
MSG_UNKNOWN = N_(
    "The image service did not confirm that it received this request, so the bot cannot follow it. "
    "It was not retried, so that you are not charged twice. Please try again."
)
MSG_INTERRUPTED = N_(
    "The bot restarted while sending this request, and cannot tell whether the image service received "
    "it. It was not sent again, so that you are not charged twice. Please try again."
)
MSG_NO_IMAGE = N_("The image service finished but returned no image.")
MSG_LOST = N_("The image service no longer knows this request.")
MSG_OUTAGE = N_(
    "The image service has not been answering for a while, so this request was not sent. "
    "It does not count against your quota. Please try again later."
)
# The job ended on an error nobody foresaw (a bug, an answer no check caught): refunded, logged in full.
MSG_NOT_MADE = N_("The image could not be made.")


def refused_text(reason: str) -> str:
    return N_("The image service refused this request: {reason}").format(reason=reason)


def refused_poll_text(reason: str) -> str:
    return N_(
        "The image service refused to report on this request ({reason}), so the bot stopped following it."
    ).format(reason=reason)


def timed_out_text(time_limit: float) -> str:
    return N_("The image took longer than {minutes} minutes, so the bot stopped waiting for it.").format(
        minutes=f"{time_limit / 60:g}"
    )


def end_text(report: TaskReport) -> str:
    """Why a task that ended upstream without images did so, in the service's own words if it gave any."""
    why = report.error_message
    if report.status == "cancelled":
        if why:
            return N_("The image service cancelled this request: {why}.").format(why=why)
        return N_("The image service cancelled this request.")
    if report.status == "timeout":
        if why:
            return N_("The image service timed out on this request: {why}.").format(why=why)
        return N_("The image service timed out on this request.")
    if why:
        return N_("The image service could not make this image: {why}").format(why=why)
    return N_("The image service could not make this image.")
