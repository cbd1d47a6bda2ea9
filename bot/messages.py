"""Every text a member reads about a job. Pure functions: no Discord objects, easy to test.

Each text comes from the message catalog (`bot.i18n`) in the language of `locale` (a Discord locale
such as "zh-CN"; None is English). The same escaping and clipping apply in every language."""

from __future__ import annotations

import re
from urllib.parse import quote

from bot.i18n import N_, t, translate_text
from bot.models import Job, Stage

Locale = object  # a discord.Locale, its value ("zh-CN"), or None for English

PROMPT_PREVIEW_CHARS = 300
MESSAGE_LIMIT = 2000  # Discord refuses longer content with 400 / 50035 (and the whole message with it)
ELLIPSIS = "…"
ZWSP = "\u200b"

# Characters that start Discord markdown anywhere in a line: formatting (* _ ~ | `), block quotes (>),
# headings (#), masked links ([text](url): escaping the brackets is enough) and the backslash itself.
_MARKDOWN = re.compile(r"([\\*_~|`>#\[\]])")
# What only means something at the start of a line: lists ("- ", "+ ", "1. ") and subtext ("-# ").
_LINE_START = re.compile(r"^(\s*)(?:([-+])|(\d+)\.)")
# "<" opens mentions, channels, roles, slash commands, custom emoji and timestamps (<t:…>); "@" opens
# @everyone/@here. A zero-width space after either keeps the text from ever being parsed as markup.
_MARKUP_OPENERS = re.compile(f"([<@])(?!{ZWSP})")
# Anything Discord would turn into a clickable link (and an embed): a scheme followed by "://".
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s<>]+")
# What may stay as it is inside a shown link; the rest is percent-encoded (as a browser would send it).
_URL_SAFE = "-._~:/?#[]@!$&'()*+,;=%"


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
    return "> " + inert(text)


def plain_link(url: str) -> str:
    """A URL shown as a plain link: in <...>, so Discord makes no embed, and percent-encoded where a
    character could end the link early or be read as markup (">", spaces, backticks, non-ASCII)."""
    return f"<{quote(url, safe=_URL_SAFE)}>"


def _split_url(match: str) -> tuple[str, str]:
    """A URL found in running text, without the punctuation that ends the sentence around it."""
    url = match.rstrip(".,;:!?'\"")
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1]
    return url, match[len(url) :]


def _escape(text: str) -> str:
    text = _MARKDOWN.sub(r"\\\1", text)
    return _MARKUP_OPENERS.sub(f"\\1{ZWSP}", text)


def _escape_line_start(match: re.Match[str]) -> str:
    # Discord hides a backslash only before punctuation: "\-" shows "-", "1\." shows "1.".
    return match[1] + ("\\" + match[2] if match[2] else match[3] + "\\.")


def inert(text: str) -> str:
    """Text from elsewhere (the image API, a prompt) made safe to show in a Discord message: on one
    line, every markdown character escaped (no masked links, headings, lists, quotes or formatting),
    mentions, custom emoji and timestamps defused, and URLs shown only as plain <...> links."""
    flat = " ".join(text.split())
    parts: list[str] = []
    position = 0
    for found in _URL.finditer(flat):
        url, rest = _split_url(found.group())
        parts.append(_escape(flat[position : found.start()]))
        parts.append(plain_link(url) + _escape(rest))
        position = found.end()
    parts.append(_escape(flat[position:]))
    return _LINE_START.sub(_escape_line_start, "".join(parts), count=1)


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Cut a message to Discord's limit without leaving half a link, mention or escape behind."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    opened = cut.rfind("<")
    if opened != -1 and cut.find(">", opened) == -1:
        cut = cut[:opened]  # half a <link> or <@mention> would render as raw markup or a bare link
    line_end = cut.rfind("\n")
    if line_end > len(cut) // 2:
        cut = cut[:line_end]  # prefer ending on a whole line
    return cut.rstrip().rstrip("\\") + ELLIPSIS


def duration(seconds: float, locale: Locale = None) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return t(locale, "{seconds} s", seconds=seconds)
    minutes, rest = divmod(seconds, 60)
    if rest:
        return t(locale, "{minutes} min {seconds} s", minutes=minutes, seconds=rest)
    return t(locale, "{minutes} min", minutes=minutes)


def details_line(job: Job, locale: Locale = None) -> str:
    parts = [t(locale, "Aspect ratio: {ratio}", ratio=job.aspect_ratio or t(locale, "default"))]
    refs = len(job.reference_urls)
    if refs == 1:
        parts.append(t(locale, "1 reference image"))
    elif refs:
        parts.append(t(locale, "{count} reference images", count=refs))
    return " · ".join(parts)


def size_note(job: Job, locale: Locale = None) -> str | None:
    if job.reference_urls and job.aspect_ratio:
        return t(
            locale, "ℹ️ With reference images the output size follows the references, not the aspect ratio."
        )
    return None


def _who(job: Job, locale: Locale) -> str:
    return f"<@{job.user_id}>" if job.user_id else t(locale, "you")


def status_text(job: Job, stage: Stage, elapsed: float, typical: float | None, locale: Locale = None) -> str:
    """The public status message: in the server's language (`locale` is the job's guild locale)."""
    who = _who(job, locale)
    # An ETA only from real history: `typical` is None until enough jobs of this kind finished.
    eta = t(locale, " (usually about {time})", time=duration(typical, locale)) if typical else ""
    if stage is Stage.QUEUED:
        head = t(locale, "⏳ **Queued** — sending the request for {who} to the image service…", who=who)
    elif stage is Stage.SUBMITTED:
        head = t(
            locale,
            "📨 **Submitted** — the image service has the request for {who}{eta}. Waiting for it to start…",
            who=who,
            eta=eta,
        )
    elif stage is Stage.SERVICE_DOWN:
        head = t(
            locale,
            "🔌 **Waiting** — the image service is not answering right now. The request for {who} "
            "is kept and will be sent as soon as it is back…",
            who=who,
        )
    elif stage is Stage.RENDERING:
        head = t(
            locale,
            "🎨 **Rendering** for {who} — {time} so far{eta}…",
            who=who,
            time=duration(elapsed, locale),
            eta=eta,
        )
    else:
        head = t(locale, "📦 **Almost there** — uploading the image for {who}…", who=who)
    lines = [head, quote_prompt(job.prompt, 150), details_line(job, locale)]
    note = size_note(job, locale)
    if note:
        lines.append(note)
    return "\n".join(lines)


def done_text(job: Job, elapsed: float, count: int, locale: Locale = None) -> str:
    who = _who(job, locale)
    time = duration(elapsed, locale)
    if count == 1:
        head = t(locale, "🖼️ Here is your image, {who} — made in {time}.", who=who, time=time)
    else:
        head = t(
            locale, "🖼️ Here are your {count} images, {who} — made in {time}.", count=count, who=who, time=time
        )
    lines = [head, quote_prompt(job.prompt), details_line(job, locale)]
    note = size_note(job, locale)
    if note:
        lines.append(note)
    return "\n".join(lines)


def result_text(
    job: Job, elapsed: float, count: int, links: list[tuple[str, str]], locale: Locale = None
) -> str:
    """The finished image's message: what it is, and the links of images that could not be
    uploaded, within Discord's limit so that the images themselves are always posted."""
    text = done_text(job, elapsed, count, locale)
    if links:
        text += "\n" + links_note(links, MESSAGE_LIMIT - len(text) - 1, locale)
    return clip(text)


def done_pointer(elapsed: float, jump_url: str, locale: Locale = None) -> str:
    return t(
        locale,
        "✅ **Done** in {time} — your image is here: {link}",
        time=duration(elapsed, locale),
        link=jump_url,
    )


def failure_text(job: Job, reason: str, locale: Locale = None) -> str:
    """`reason` is a catalog text (the bot's own words, translated here) or the image API's own words,
    which are shown as they came, as inert text."""
    head = t(
        locale,
        "❌ Sorry {who}, no image this time. {reason}",
        who=_who(job, locale),
        reason=inert(translate_text(locale, reason)),
    )
    return clip("\n".join([clip(head, MESSAGE_LIMIT - 200), quote_prompt(job.prompt, 150)]))


def modlog_refusal(
    user_id: int,
    channel_id: int | None,
    reason: str,
    prompt: str,
    detail: str | None,
    locale: Locale = None,
) -> str:
    where = t(locale, " in {channel}", channel=f"<#{channel_id}>") if channel_id else ""
    # A rule's text may hold markdown (a regex full of * and _): show it as inline code.
    rule = (
        t(locale, " (rule {rule})", rule=f"`{detail.replace('`', chr(39))[:200]}`")
        if detail and reason == "blocked_prompt"
        else ""
    )
    head = t(
        locale,
        "🚫 Refused **{reason}**{rule}: {who}{where}",
        reason=reason,
        rule=rule,
        who=f"<@{user_id}>",
        where=where,
    )
    return f"{head}\n{quote_prompt(prompt, 200)}"


def modlog_finished(job: Job, jump_url: str, locale: Locale = None) -> str:
    head = t(locale, "🖼️ {who} made an image: {link}", who=f"<@{job.user_id}>", link=jump_url)
    return f"{head}\n{quote_prompt(job.prompt, 200)}"


def cancelled_text(job: Job, by_user: int, elapsed: float, *, refunded: bool, locale: Locale = None) -> str:
    who = t(locale, "the requester") if by_user == job.user_id else f"<@{by_user}>"
    charge = (
        t(locale, "It does not count against the quota.")
        if refunded
        else t(locale, "It still counts against the daily quota.")
    )
    head = t(
        locale,
        "🛑 **Cancelled** by {who} after {time}. The bot stopped following it; the image service may "
        "still finish it, but it will not be posted. {charge}",
        who=who,
        time=duration(elapsed, locale),
        charge=charge,
    )
    return "\n".join([head, quote_prompt(job.prompt, 150)])


def reposted_text(job: Job, by_user: int, locale: Locale = None) -> str:
    if by_user == job.user_id:
        head = t(locale, "🖼️ Image #{id} by {who}.", id=job.id, who=f"<@{job.user_id}>")
    else:
        head = t(
            locale,
            "🖼️ Image #{id} by {who}, posted again by {by}.",
            id=job.id,
            who=f"<@{job.user_id}>",
            by=f"<@{by_user}>",
        )
    return "\n".join([head, quote_prompt(job.prompt, 200)])


QUEUE_STATES = {
    "queued": N_("⏳ queued"),
    "submitting": N_("📨 sending"),
    "running": N_("🎨 rendering"),
    "completed": N_("📦 uploading"),
}


def queue_line(job: Job, elapsed: float, typical: float | None, locale: Locale = None) -> str:
    state = (
        t(locale, QUEUE_STATES[job.status.value]) if job.status.value in QUEUE_STATES else job.status.value
    )
    eta = t(locale, " · usually about {time}", time=duration(typical, locale)) if typical else ""
    who = f" · <@{job.user_id}>" if job.user_id else ""
    return f"`#{job.id}` {state} · {duration(elapsed, locale)}{eta}{who}\n{quote_prompt(job.prompt, 80)}"


def history_text(
    jobs: list[Job],
    member_id: int,
    page: int,
    pages: int,
    total: int,
    *,
    capped: bool = False,
    locale: Locale = None,
) -> str:
    who = f"<@{member_id}>"
    if not jobs:
        return t(locale, "No images yet for {who} in this server.", who=who)
    if capped:  # counting further would cost more than the page itself
        header = t(locale, "page {page} (more than {total} in all)", page=page + 1, total=f"{total:,}")
    else:
        header = t(locale, "page {page} of {pages} ({total} in all)", page=page + 1, pages=pages, total=total)
    lines = [t(locale, "🖼️ Images of {who} — {header}", who=who, header=header)]
    for job in jobs:
        when = f"<t:{int(job.delivered_at or job.created_at)}:f>"
        link = ""
        if job.result_message_id and job.result_deleted_at is None and job.guild_id:
            channel = job.result_channel_id or job.channel_id
            link = f" — https://discord.com/channels/{job.guild_id}/{channel}/{job.result_message_id}"
        elif job.result_deleted_at is not None:
            link = t(locale, " — (message deleted)")
        lines.append(f"`#{job.id}` {when}{link}\n{quote_prompt(job.prompt, 100)}")
    return "\n".join(lines)


def links_note(failed: list[tuple[str, str]], budget: int = MESSAGE_LIMIT, locale: Locale = None) -> str:
    """For images that could not be uploaded: the link, with why, as many as fit in `budget`
    characters. A link is never cut (half a URL is a broken one): those that do not fit are counted."""
    head = t(locale, "Some images could not be uploaded here, so here are their links (they may expire):")
    lines = [head]
    used = len(head)
    for shown, (url, why) in enumerate(failed):
        line = f"• {plain_link(url)} ({inert(translate_text(locale, why))})"
        left = len(failed) - shown - 1
        # Keep room for the closing count line in case a later link does not fit.
        reserve = 80 if left else 0
        if used + 1 + len(line) + reserve > budget:
            missing = len(failed) - shown
            lines.append(
                t(
                    locale,
                    "…and {count} more that could not be shown here (their links are too long).",
                    count=missing,
                )
                if shown
                else t(
                    locale,
                    "{count} of them could not be shown here (their links are too long).",
                    count=missing,
                )
            )
            break
        lines.append(line)
        used += 1 + len(line)
    return "\n".join(lines)
