"""Every text a member reads about a job. Pure functions: no Discord objects, easy to test."""

from __future__ import annotations

import re

from bot.models import Job, Stage

PROMPT_PREVIEW_CHARS = 300
_MARKDOWN = re.compile(r"([\\*_~|`>#\[\]()])")


def human_bytes(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def safe_name(filename: str) -> str:
    """A filename fit to show inside backticks."""
    cleaned = "".join(ch for ch in filename if ch.isprintable() and ch not in "`\n\r")
    return (cleaned[:80] + "…") if len(cleaned) > 80 else (cleaned or "attachment")


def quote_prompt(prompt: str, limit: int = PROMPT_PREVIEW_CHARS) -> str:
    """The prompt as a block quote: markdown escaped, mentions defused, cut at a word boundary."""
    text = " ".join(prompt.split())
    if len(text) > limit:
        cut = text[:limit].rsplit(" ", 1)[0]
        text = (cut if len(cut) > limit // 2 else text[:limit]).rstrip() + " …"
    text = _MARKDOWN.sub(r"\\\1", text)
    # A zero-width space after @ keeps "@everyone" and "<@id>" from ever rendering as mentions.
    text = text.replace("@", "@\u200b")
    return "> " + text


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def details_line(job: Job) -> str:
    parts = [f"Aspect ratio: {job.aspect_ratio or 'default'}"]
    refs = len(job.reference_urls)
    if refs:
        parts.append(f"{refs} reference image{'s' if refs != 1 else ''}")
    return " · ".join(parts)


def size_note(job: Job) -> str | None:
    if job.reference_urls and job.aspect_ratio:
        return "ℹ️ With reference images the output size follows the references, not the aspect ratio."
    return None


def status_text(job: Job, stage: Stage, elapsed: float, typical: float | None) -> str:
    who = f"<@{job.user_id}>" if job.user_id else "you"
    # An ETA only from real history: `typical` is None until enough jobs of this kind finished.
    eta = f" (usually about {duration(typical)})" if typical else ""
    if stage is Stage.QUEUED:
        head = f"⏳ **Queued** — sending the request for {who} to the image service…"
    elif stage is Stage.SUBMITTED:
        head = (
            f"📨 **Submitted** — the image service has the request for {who}{eta}. Waiting for it to start…"
        )
    elif stage is Stage.SERVICE_DOWN:
        head = (
            f"🔌 **Waiting** — the image service is not answering right now. The request for {who} "
            "is kept and will be sent as soon as it is back…"
        )
    elif stage is Stage.RENDERING:
        head = f"🎨 **Rendering** for {who} — {duration(elapsed)} so far{eta}…"
    else:
        head = f"📦 **Almost there** — uploading the image for {who}…"
    lines = [head, quote_prompt(job.prompt, 150), details_line(job)]
    note = size_note(job)
    if note:
        lines.append(note)
    return "\n".join(lines)


def done_text(job: Job, elapsed: float, count: int) -> str:
    who = f"<@{job.user_id}>" if job.user_id else "you"
    noun = "image" if count == 1 else f"{count} images"
    lines = [
        f"🖼️ Here is your {noun}, {who} — made in {duration(elapsed)}.",
        quote_prompt(job.prompt),
        details_line(job),
    ]
    note = size_note(job)
    if note:
        lines.append(note)
    return "\n".join(lines)


def done_pointer(elapsed: float, jump_url: str) -> str:
    return f"✅ **Done** in {duration(elapsed)} — your image is here: {jump_url}"


def failure_text(job: Job, reason: str) -> str:
    who = f"<@{job.user_id}>" if job.user_id else "you"
    return "\n".join([f"❌ Sorry {who}, no image this time. {reason}", quote_prompt(job.prompt, 150)])


def modlog_refusal(user_id: int, channel_id: int | None, reason: str, prompt: str, detail: str | None) -> str:
    where = f" in <#{channel_id}>" if channel_id else ""
    # A rule's text may hold markdown (a regex full of * and _): show it as inline code.
    rule = f" (rule `{detail.replace('`', chr(39))[:200]}`)" if detail and reason == "blocked_prompt" else ""
    return f"🚫 Refused **{reason}**{rule}: <@{user_id}>{where}\n{quote_prompt(prompt, 200)}"


def modlog_finished(job: Job, jump_url: str) -> str:
    return f"🖼️ <@{job.user_id}> made an image: {jump_url}\n{quote_prompt(job.prompt, 200)}"


def cancelled_text(job: Job, by_user: int, elapsed: float, *, refunded: bool) -> str:
    who = "the requester" if by_user == job.user_id else f"<@{by_user}>"
    charge = (
        "It does not count against the quota." if refunded else "It still counts against the daily quota."
    )
    return "\n".join(
        [
            f"🛑 **Cancelled** by {who} after {duration(elapsed)}. The bot stopped following it; the image "
            f"service may still finish it, but it will not be posted. {charge}",
            quote_prompt(job.prompt, 150),
        ]
    )


def reposted_text(job: Job, by_user: int) -> str:
    who = "" if by_user == job.user_id else f", posted again by <@{by_user}>"
    return "\n".join([f"🖼️ Image #{job.id} by <@{job.user_id}>{who}.", quote_prompt(job.prompt, 200)])


def queue_line(job: Job, elapsed: float, typical: float | None) -> str:
    state = {
        "queued": "⏳ queued",
        "submitting": "📨 sending",
        "running": "🎨 rendering",
        "completed": "📦 uploading",
    }.get(job.status.value, job.status.value)
    eta = f" · usually about {duration(typical)}" if typical else ""
    who = f" · <@{job.user_id}>" if job.user_id else ""
    return f"`#{job.id}` {state} · {duration(elapsed)}{eta}{who}\n{quote_prompt(job.prompt, 80)}"


def history_text(jobs: list[Job], member_id: int, page: int, pages: int, total: int) -> str:
    if not jobs:
        return f"No images yet for <@{member_id}> in this server."
    lines = [f"🖼️ Images of <@{member_id}> — page {page + 1} of {pages} ({total} in all)"]
    for job in jobs:
        when = f"<t:{int(job.delivered_at or job.created_at)}:f>"
        link = ""
        if job.result_message_id and job.result_deleted_at is None and job.guild_id:
            channel = job.result_channel_id or job.channel_id
            link = f" — https://discord.com/channels/{job.guild_id}/{channel}/{job.result_message_id}"
        elif job.result_deleted_at is not None:
            link = " — (message deleted)"
        lines.append(f"`#{job.id}` {when}{link}\n{quote_prompt(job.prompt, 100)}")
    return "\n".join(lines)


def links_note(failed: list[tuple[str, str]]) -> str:
    """For images that could not be uploaded: the link, with why."""
    lines = ["Some images could not be uploaded here, so here are their links (they may expire):"]
    lines += [f"• <{url}> ({why})" for url, why in failed]
    return "\n".join(lines)
