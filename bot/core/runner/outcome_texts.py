"""What the requester reads when a job ends without an image: texts, never a raw payload.

Each is a `Text` (bot/core/texts.py); the job row keeps it in its stored form (`stored()`, JSON), so the
sink renders it in the reader's language and the CSV export and logs in English. The image service's
own words travel inside as `Verbatim`, never looked up in a catalog.
"""

from __future__ import annotations

from bot.core.runner.ports import TaskReport
from bot.core.texts import Text, Verbatim, msg

# The delivery state of a job whose outcome could not be told (every way the sink knows failed).
UNDELIVERABLE = "undeliverable"

MSG_UNAVAILABLE = msg("The image service is unavailable right now. The bot's operator has been told.")
MSG_UNREACHABLE = msg(
    "The image service could not be reached, so nothing was started. Please try again shortly."
)
MSG_BUSY = msg(
    "The image service is too busy right now, so nothing was started. Please try again in a minute."
)
MSG_UNKNOWN = msg(
    "The image service did not confirm that it received this request, so the bot cannot follow it. "
    "It was not retried, so that you are not charged twice. Please try again."
)
MSG_INTERRUPTED = msg(
    "The bot restarted while sending this request, and cannot tell whether the image service received "
    "it. It was not sent again, so that you are not charged twice. Please try again."
)
MSG_NO_IMAGE = msg("The image service finished but returned no image.")
MSG_NO_VIDEO = msg(
    "The image service finished but returned no usable video. It does not count against your quota."
)
MSG_LOST = msg("The image service no longer knows this request.")
MSG_OUTAGE = msg(
    "The image service has not been answering for a while, so this request was not sent. "
    "It does not count against your quota. Please try again later."
)
# The job ended on an error nobody foresaw (a bug, an answer no check caught): refunded, logged in full.
MSG_NOT_MADE = msg("The image could not be made.")


def refused_text(reason: str) -> Text:
    return msg("The image service refused this request: {reason}", reason=Verbatim(reason))


def refused_poll_text(reason: str) -> Text:
    return msg(
        "The image service refused to report on this request ({reason}), so the bot stopped following it.",
        reason=Verbatim(reason),
    )


def timed_out_text(time_limit: float) -> Text:
    return msg(
        "The image took longer than {minutes} minutes, so the bot stopped waiting for it.",
        minutes=f"{time_limit / 60:g}",
    )


def end_text(report: TaskReport) -> Text:
    """Why a task that ended upstream without images did so, in the service's own words if it gave any."""
    why = Verbatim(report.error_message) if report.error_message else None
    if report.status == "cancelled":
        if why:
            return msg("The image service cancelled this request: {why}.", why=why)
        return msg("The image service cancelled this request.")
    if report.status == "timeout":
        if why:
            return msg("The image service timed out on this request: {why}.", why=why)
        return msg("The image service timed out on this request.")
    if why:
        return msg("The image service could not make this image: {why}", why=why)
    return msg("The image service could not make this image.")


def msg_video_unusable(why: Text) -> Text:
    """A finished video whose file could not be used (not a video, too large, an internal address)."""
    return msg(
        "The image service finished, but its video could not be used ({why}). It does not count against "
        "your quota.",
        why=why,
    )
