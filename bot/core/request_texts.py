"""What a member reads about a request of several images: its one message, its /queue and /history
entries, and its cancellation. Pure functions over the request's jobs, rendered in the reader's language.

Image N is the request's job N (`request_index`), in the order the images are shown whatever order they
finish in; members know them as 1-4, as in Midjourney's grid."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.i18n import N_, nt, t
from bot.core.messages import (
    Locale,
    clip,
    details_line,
    duration,
    inert,
    quote_prompt,
    size_note,
)
from bot.core.models import Job, JobStatus
from bot.core.texts import from_stored, render

# The state of one image of a request, as its message shows it.
SHOWN = "shown"
RENDERING = "rendering"
FAILED = "failed"
CANCELLED = "cancelled"
ELSEWHERE = "elsewhere"  # posted on its own (the request's message could not take it)

_STATE_WORDS = {
    SHOWN: N_("✅ shown"),
    RENDERING: N_("🎨 still rendering"),
    CANCELLED: N_("🛑 cancelled"),
    ELSEWHERE: N_("📨 sent in a message of its own"),
}
_RUNNING = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.COMPLETED)


@dataclass(frozen=True)
class ImageState:
    """One image of a request: its place (1..N), its job, and what became of it."""

    number: int
    job: Job
    state: str


def image_states(jobs: list[Job], shown: set[int]) -> list[ImageState]:
    """Each job's state, in the request's order: `shown` holds the ids of the jobs whose image is in the
    request's message now."""
    states = []
    for job in sorted(jobs, key=lambda j: j.request_index):
        if job.id in shown:
            state = SHOWN
        elif job.status in _RUNNING:
            state = RENDERING
        elif job.status is JobStatus.CANCELLED:
            state = CANCELLED
        elif job.status is JobStatus.DELIVERED:
            state = ELSEWHERE
        else:
            state = FAILED
        states.append(ImageState(job.request_index, job, state))
    return states


def _state_words(image: ImageState, locale: Locale) -> str:
    if image.state == FAILED:
        reason = image.job.error
        why = inert(render(locale, from_stored(reason))) if reason else t(locale, "no image was made")
        return t(locale, "❌ failed: {reason}", reason=why)
    return t(locale, _STATE_WORDS[image.state])


def request_text(jobs: list[Job], shown: set[int], elapsed: float, locale: Locale = None) -> str:
    """The request's message: how many of its images are here, the prompt, and a line per image that is
    not shown (still rendering, failed with the reason, cancelled)."""
    states = image_states(jobs, shown)
    head_job = states[0].job
    who = f"<@{head_job.user_id}>" if head_job.user_id else t(locale, "you")
    count, done = len(states), sum(1 for s in states if s.state == SHOWN)
    running = any(s.state == RENDERING for s in states)
    if running:
        head = t(
            locale,
            "🖼️ {done} of {count} images for {who} so far — {time}…",
            done=done,
            count=count,
            who=who,
            time=duration(elapsed, locale),
        )
    else:
        head = nt(
            locale,
            "🖼️ {done} of {count} image for {who} — finished in {time}.",
            "🖼️ {done} of {count} images for {who} — finished in {time}.",
            count,
            done=done,
            who=who,
            time=duration(elapsed, locale),
        )
    lines = [head, quote_prompt(head_job.prompt), details_line(head_job, locale)]
    note = size_note(head_job, locale)
    if note:
        lines.append(note)
    others = [s for s in states if s.state != SHOWN]
    if others:
        lines.append(" · ".join(f"**{s.number}** {_state_words(s, locale)}" for s in others))
    return clip("\n".join(lines))


def request_queue_line(jobs: list[Job], elapsed: float, locale: Locale = None) -> str:
    """A request of several images in /queue: one entry, each image's state."""
    head_job = min(jobs, key=lambda j: j.request_index)
    states = image_states(jobs, set())
    parts = [f"**{s.number}** {_queue_state(s, locale)}" for s in states]
    who = f" · <@{head_job.user_id}>" if head_job.user_id else ""
    head = nt(
        locale,
        "`#{id}` {count} image · {time}",
        "`#{id}` {count} images · {time}",
        len(jobs),
        id=head_job.request,
        time=duration(elapsed, locale),
    )
    return f"{head}{who} · {' · '.join(parts)}\n{quote_prompt(head_job.prompt, 80)}"


_QUEUE_WORDS = {
    JobStatus.QUEUED: N_("⏳ queued"),
    JobStatus.SUBMITTING: N_("📨 sending"),
    JobStatus.RUNNING: N_("🎨 rendering"),
    JobStatus.COMPLETED: N_("📦 uploading"),
    JobStatus.DELIVERED: N_("✅ done"),
    JobStatus.CANCELLED: N_("🛑 cancelled"),
}


def _queue_state(image: ImageState, locale: Locale) -> str:
    words = _QUEUE_WORDS.get(image.job.status)
    return t(locale, words) if words else t(locale, "❌ failed")


def request_history_states(jobs: list[Job], locale: Locale = None) -> str:
    """/history's line of a request's images: `1 ✅ · 2 ❌ · 3 ✅ · 4 ✅`."""
    marks = {JobStatus.DELIVERED: "✅", JobStatus.CANCELLED: "🛑"}
    shown = sorted(jobs, key=lambda j: j.request_index)
    parts = [f"**{j.request_index}** {marks.get(j.status, '❌')}" for j in shown]
    delivered = sum(1 for j in jobs if j.status is JobStatus.DELIVERED)
    head = nt(locale, "{done} of {count} image", "{done} of {count} images", len(jobs), done=delivered)
    return f"{head}: {' · '.join(parts)}"


def request_cancelled_text(
    jobs: list[Job], by_user: int, cancelled: int, elapsed: float, *, locale: Locale = None
) -> str:
    """The status message of a request whose unfinished images were cancelled."""
    head_job = min(jobs, key=lambda j: j.request_index)
    who = t(locale, "the requester") if by_user == head_job.user_id else f"<@{by_user}>"
    head = nt(
        locale,
        "🛑 **Cancelled** by {who} after {time}: {count} image was still rendering and will not be posted.",
        "🛑 **Cancelled** by {who} after {time}: {count} images were still rendering and will not be posted.",
        cancelled,
        who=who,
        time=duration(elapsed, locale),
    )
    return "\n".join([head, quote_prompt(head_job.prompt, 150)])


def request_pointer(done: int, count: int, jump_url: str, locale: Locale = None) -> str:
    """The status message of a request of several images, once its message exists."""
    if done >= count:
        return t(locale, "✅ **Done** — the images are here: {link}", link=jump_url)
    return t(
        locale,
        "🖼️ {done} of {count} images so far — they are shown here as they finish: {link}",
        done=done,
        count=count,
        link=jump_url,
    )


def history_requests_text(
    groups: list[list[Job]],
    member_id: int,
    page: int,
    pages: int,
    total: int,
    *,
    capped: bool = False,
    locale: Locale = None,
) -> str:
    """/history's page: one entry per request (a request of several images with each image's state).
    `total` counts the requests, as the pages list them (a request of four images is one), and `pages`
    is reckoned from it."""
    who = f"<@{member_id}>"
    if not groups:
        return t(locale, "No images yet for {who} in this server.", who=who)
    if capped:  # counting further would cost more than the page itself
        header = t(
            locale, "page {page} (more than {total} requests in all)", page=page + 1, total=f"{total:,}"
        )
    else:
        header = nt(
            locale,
            "page {page} of {pages} ({count} request in all)",
            "page {page} of {pages} ({count} requests in all)",
            total,
            page=page + 1,
            pages=pages,
        )
    lines = [t(locale, "🖼️ Made by {who} — {header}", who=who, header=header)]
    for jobs in groups:
        posted = [j for j in jobs if j.status is JobStatus.DELIVERED and j.result_message_id]
        job = posted[0] if posted else jobs[0]
        when = f"<t:{int(job.delivered_at or job.created_at)}:f>"
        link = ""
        if job.result_message_id and job.result_deleted_at is None and job.guild_id:
            channel = job.result_channel_id or job.channel_id
            link = f" — https://discord.com/channels/{job.guild_id}/{channel}/{job.result_message_id}"
        elif job.result_deleted_at is not None:
            link = t(locale, " — (message deleted)")
        states = f"\n{request_history_states(jobs, locale)}" if len(jobs) > 1 else ""
        lines.append(f"`#{job.request}` {when}{link}{states}\n{quote_prompt(job.prompt, 100)}")
    return "\n".join(lines)
