"""Every text a member reads about a job. Pure functions: no Discord objects, easy to test."""

from __future__ import annotations

import math
import re
from urllib.parse import quote

from bot.models import Job, Stage

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
    if job.style:
        parts.append(f"Style: {inert(job.style)}")
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


def result_text(job: Job, elapsed: float, count: int, links: list[tuple[str, str]]) -> str:
    """The finished image's message: what it is, and the links of images that could not be
    uploaded, within Discord's limit so that the images themselves are always posted."""
    text = done_text(job, elapsed, count)
    if links:
        text += "\n" + links_note(links, MESSAGE_LIMIT - len(text) - 1)
    return clip(text)


def done_pointer(elapsed: float, jump_url: str) -> str:
    return f"✅ **Done** in {duration(elapsed)} — your image is here: {jump_url}"


def failure_text(job: Job, reason: str) -> str:
    """`reason` may carry the image API's own words: they are shown as inert text."""
    who = f"<@{job.user_id}>" if job.user_id else "you"
    head = f"❌ Sorry {who}, no image this time. {inert(reason)}"
    return clip("\n".join([clip(head, MESSAGE_LIMIT - 200), quote_prompt(job.prompt, 150)]))


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


def history_text(
    jobs: list[Job], member_id: int, page: int, pages: int, total: int, *, capped: bool = False
) -> str:
    if not jobs:
        return f"No images yet for <@{member_id}> in this server."
    if capped:  # counting further would cost more than the page itself
        header = f"page {page + 1} (more than {total:,} in all)"
    else:
        header = f"page {page + 1} of {pages} ({total} in all)"
    lines = [f"🖼️ Images of <@{member_id}> — {header}"]
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


def links_note(failed: list[tuple[str, str]], budget: int = MESSAGE_LIMIT) -> str:
    """For images that could not be uploaded: the link, with why, as many as fit in `budget`
    characters. A link is never cut (half a URL is a broken one): those that do not fit are counted."""
    head = "Some images could not be uploaded here, so here are their links (they may expire):"
    lines = [head]
    used = len(head)
    for shown, (url, why) in enumerate(failed):
        line = f"• {plain_link(url)} ({inert(why)})"
        left = len(failed) - shown - 1
        # Keep room for the closing count line in case a later link does not fit.
        reserve = 80 if left else 0
        if used + 1 + len(line) + reserve > budget:
            missing = len(failed) - shown
            lines.append(
                f"…and {missing} more that could not be shown here (their links are too long)."
                if shown
                else f"{missing} of them could not be shown here (their links are too long)."
            )
            break
        lines.append(line)
        used += 1 + len(line)
    return "\n".join(lines)


# -- personal use (the app installed to a person's account) -------------------------------------------


def _when(epoch: float, style: str = "R") -> str:
    return f"<t:{math.ceil(epoch)}:{style}>"


def personal_banned_text(expires_at: float | None, reason: str | None) -> str:
    until = f" until {_when(expires_at, 'f')}" if expires_at else ""
    why = f" Reason: {inert(reason)}" if reason else ""
    return (
        f"You cannot use the image bot outside servers that added it{until}: the bot's operator has "
        f"blocked your personal use.{why} It still works in servers that added the bot, under their rules."
    )


PERSONAL_OFF = (
    "Personal use of the image bot is turned off by its operator. It still works in servers that "
    "added the bot."
)


def personal_quota_text(limit: int, resets_at: float) -> str:
    return (
        f"You have used all {limit} of today's personal images (in DMs, group DMs and servers without the "
        f"bot, together). They reset {_when(resets_at)} ({_when(resets_at, 't')})."
    )


def personal_busy_text(running: int, limit: int) -> str:
    plural = "s" if running != 1 else ""
    return (
        f"You already have {running} image{plural} in progress (the limit is {limit}). Please wait for "
        "one to finish; see them with /queue."
    )


def place_name(context: str | None, place_guild_id: int | None, channel_id: int | None) -> str:
    """Where a personal request was made, as its requester reads it later (a DM after 15 minutes)."""
    if context == "user_install_guild" and place_guild_id and channel_id:
        return f"https://discord.com/channels/{place_guild_id}/{channel_id}"
    if context == "private_channel":
        return "a group DM"
    if context == "dm":
        return "our DM"
    return "the place where you asked"


def late_delivery_note(context: str | None, place_guild_id: int | None, channel_id: int | None) -> str:
    return (
        f"Your image from {place_name(context, place_guild_id, channel_id)} is ready; the original "
        "message could no longer be edited, so here it is.\n"
    )


def late_failure_note(context: str | None, place_guild_id: int | None, channel_id: int | None) -> str:
    return (
        f"About your request from {place_name(context, place_guild_id, channel_id)} (the original "
        "message could no longer be edited):\n"
    )


PERSONAL_USAGE_HEADER = "**Your personal use** (DMs, group DMs and servers without the bot, together)"
# -- server styles, personal settings, "Use as reference" --------------------------------------------


def style_name(name: str) -> str:
    """A style name shown inside backticks (names hold no backticks: `bot.styles.clean_style`)."""
    return f"`{name.replace('`', chr(39))}`"


def style_unknown(name: str) -> str:
    return (
        f"There is no style called {style_name(name[:40])} in this server. Pick one from the list that "
        "appears as you type, or leave `style` out. Nothing was started and nothing was counted."
    )


def style_saved(name: str, text: str, *, replaced: bool) -> str:
    verb = "updated" if replaced else "added"
    return f"Style {style_name(name)} {verb}. `/imagine` adds this to the prompt:\n{quote_prompt(text, 1000)}"


def style_not_saved(reason: str) -> str:
    return f"The style was not saved: {reason}."


def style_removed(name: str, *, found: bool) -> str:
    if not found:
        return f"There is no style called {style_name(name[:40])}; nothing was removed."
    return f"Style {style_name(name)} removed. Jobs already made with it keep it (Reroll and Edit too)."


def style_list(styles: list[tuple[str, str]], most: int) -> str:
    if not styles:
        return "This server has no styles yet. Add one with `/imagine-admin style add`."
    lines = [f"🎨 Styles of this server ({len(styles)} of at most {most}):"]
    for name, text in styles:
        lines.append(f"{style_name(name)}\n{quote_prompt(text, 200)}")
    return "\n".join(lines)


def private_images_switched(enabled: bool) -> str:
    if enabled:
        return (
            "Members may now have their images sent to them **privately** (a message only they see, or a "
            "DM), if they choose so in `/settings`. The status message in the channel says where it went."
        )
    return "Finished images are now always posted **in the channel**, whatever members chose in `/settings`."


DELIVERY_NAMES = {
    "channel": "posted in the channel",
    "ephemeral": "sent privately (a message only you see; by DM after 15 minutes)",
    "dm": "sent to you by direct message",
}


def settings_text(
    aspect_ratio: str | None,
    style: str | None,
    delivery: str | None,
    *,
    style_exists: bool,
    private_allowed: bool,
) -> str:
    shown_style = "none"
    if style:
        shown_style = style_name(style) + ("" if style_exists else " (no longer exists here: not used)")
    where = DELIVERY_NAMES.get(delivery or "channel", DELIVERY_NAMES["channel"])
    if delivery in ("ephemeral", "dm") and not private_allowed:
        where += " — but this server does not allow private images, so they are posted in the channel"
    return "\n".join(
        [
            "⚙️ Your settings in this server (used when `/imagine` leaves them out):",
            f"• Aspect ratio: {aspect_ratio or 'none (the image service decides)'}",
            f"• Style: {shown_style}",
            f"• Finished images: {where}",
            "Change one with `/settings` and an option; `clear` resets one or all.",
        ]
    )


PRIVATE_NOT_ALLOWED = (
    "This server does not allow private images, so your images will be posted in the channel. "
    "A moderator can allow them with `/imagine-admin private-images`."
)


def done_privately(elapsed: float, delivery: str) -> str:
    where = "by direct message" if delivery == "dm" else "privately (only they can see it)"
    return f"✅ **Done** in {duration(elapsed)} — the image was sent to the requester {where}."


PRIVATE_DM_NOTE = "Here is the image you asked for, sent privately as you chose in /settings.\n"

REFERENCE_NO_IMAGES = (
    "That message has no image to use as a reference (only attached images and image embeds count)."
)
REFERENCE_TOO_MANY = "That message has more than 5 images; its first 5 are used as references."
REFERENCE_DIALOG_TITLE = "Use as reference"
GUILD_ONLY_REFERENCE = "“Use as reference” works on messages in a server channel, not in DMs."
