"""A finished video on Discord: the MP4 uploaded as a file, re-encoded to fit the server's upload limit
when it is larger, and refused with what the member can do when even that does not fit.

Never a link: the image service's links expire, so a clip shown only as a link would be lost a day later.
The re-encoding (PyAV, bot/adapters/video.py) is CPU work and runs on the image pool, off the event loop.
"""

from __future__ import annotations

import logging

import discord

from bot.adapters.video import VideoError, fit_to_limit
from bot.core import messages
from bot.core.executors import IMAGES
from bot.core.i18n import t
from bot.core.image_file import ImageFile
from bot.core.models import Job
from bot.core.runner.ports import VideoRefused
from bot.core.texts import Text, msg
from bot.discord.delivery_routes import Parcel, Upload, public_language

log = logging.getLogger(__name__)

MEGABYTE = 1024 * 1024


def video_filename(job: Job) -> str:
    """The upload's name: it starts like every file of the job (`delivery_routes.marker`), so an earlier
    post is found after a restart as an image's is."""
    return f"imagine-{job.id}-1.mp4"


async def video_parcel(job: Job, video: ImageFile, elapsed: float, limit: int) -> Parcel:
    """The message carrying the clip. VideoRefused (the runner fails the job, refunded) when it is
    larger than `limit` and cannot be re-encoded to fit."""
    assert video.data is not None, "the runner hands over only a fetched video"
    data = await fit_video(job, video.data, limit)
    if data is None:
        raise VideoRefused(too_large_text(job, len(video.data), limit))
    reencoded = data is not video.data
    return Parcel(
        job,
        public_text=video_text(job, elapsed, reencoded, public_language(job)),
        # Read by the requester alone (a private delivery): in their language.
        private_text=video_text(job, elapsed, reencoded, job.locale),
        elapsed=elapsed,
        uploads=[Upload(1, video_filename(job), data)],
        indexes=[1],
    )


async def fit_video(job: Job, data: bytes, limit: int) -> bytes | None:
    """The clip within `limit` bytes: itself when it fits, else re-encoded (on the image pool); None when
    even that does not fit."""
    if len(data) <= limit:
        return data
    try:
        fitted = await IMAGES.run(fit_to_limit, data, limit)
    except VideoError as error:
        log.warning("job %s: the video could not be re-encoded: %s", job.id, error)
        return None
    if fitted is None:
        log.warning("job %s: a %s-byte video does not fit the %s-byte upload limit", job.id, len(data), limit)
        return None
    log.info("job %s: re-encoded a %s-byte video to %s bytes to fit", job.id, len(data), len(fitted))
    return fitted


def upload_limit(client: discord.Client, job: Job, default: int) -> int:
    """What the job's place accepts: its server's file size limit (boosts raise it), else `default`."""
    guild = client.get_guild(job.guild_id) if job.guild_id else None
    return guild.filesize_limit if guild is not None else default


def too_large_text(job: Job, size: int, limit: int) -> Text:
    """Why the clip is not posted, and what the member can do instead."""
    sizes = {"size": f"{size / MEGABYTE:.1f}", "limit": f"{limit / MEGABYTE:.0f}"}
    if job.reference_urls or (job.video_resolution or "").upper() == "480P":
        return msg(
            "The video is {size} MB, more than the {limit} MB this place accepts, and could not be made "
            "small enough. It does not count against your quota. A shorter clip will fit more easily.",
            **sizes,
        )
    return msg(
        "The video is {size} MB, more than the {limit} MB this place accepts, and could not be made "
        "small enough. It does not count against your quota. A shorter clip, or 480P, will fit more "
        "easily.",
        **sizes,
    )


def video_text(job: Job, elapsed: float, reencoded: bool, locale: str | None) -> str:
    """The video's message: what it is, made from what, and whether it was re-encoded to fit."""
    who = f"<@{job.user_id}>" if job.user_id else t(locale, "you")
    head = t(
        locale,
        "🎬 Here is your video, {who} — {seconds} s, made in {time}.",
        who=who,
        seconds=job.video_seconds or 0,
        time=messages.duration(elapsed, locale),
    )
    if job.reference_urls:
        details = t(locale, "Animated from an image")
    else:
        details = t(
            locale,
            "{resolution} · Aspect ratio: {ratio}",
            resolution=job.video_resolution or "720P",
            ratio=job.aspect_ratio or "16:9",
        )
    if job.style:
        details += " · " + t(locale, "Style: {name}", name=messages.inert(job.style))
    lines = [head, messages.quote_prompt(job.prompt), details]
    if reencoded:
        lines.append(t(locale, "ℹ️ Re-encoded to fit the upload limit here."))
    return messages.clip("\n".join(lines))
