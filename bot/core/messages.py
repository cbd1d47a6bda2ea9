"""Every text a member reads about a job. Pure functions: no Discord objects, easy to test.

Each text comes from the message catalog (`bot.i18n`) in the language of `locale` (a Discord locale
such as "zh-CN"; None is English). The same escaping and clipping apply in every language."""

from __future__ import annotations

import math
import re
from urllib.parse import quote

from bot.core.i18n import N_, nt, t
from bot.core.models import Job, Stage
from bot.core.texts import Text, Verbatim, from_stored, msg, plural_msg, render
from bot.core.video_contract import VIDEO_DURATIONS, video_cost

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
    if refs:
        parts.append(nt(locale, "1 reference image", "{count} reference images", refs))
    if job.style:
        parts.append(t(locale, "Style: {name}", name=inert(job.style)))
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
    elif job.media == "video":
        head = t(locale, "📦 **Almost there** — uploading the video for {who}…", who=who)
    else:
        head = t(locale, "📦 **Almost there** — uploading the image for {who}…", who=who)
    details = video_details(job, locale) if job.media == "video" else details_line(job, locale)
    lines = [head, quote_prompt(job.prompt, 150), details]
    note = size_note(job, locale)
    if note:
        lines.append(note)
    return "\n".join(lines)


def video_details(job: Job, locale: Locale = None) -> str:
    """A video's length, what it is made from and what it counts as: shown from the acknowledgement on."""
    if job.reference_urls:
        made = t(locale, "from an image")
    else:
        made = t(
            locale,
            "{resolution}, aspect ratio {ratio}",
            resolution=job.video_resolution or "720P",
            ratio=job.aspect_ratio or t(locale, "default"),
        )
    return nt(
        locale,
        "🎬 A {seconds} s video, {made} · counts as 1 image",
        "🎬 A {seconds} s video, {made} · counts as {count} images",
        job.units,
        seconds=job.video_seconds or 0,
        made=made,
    )


def done_text(job: Job, elapsed: float, count: int, locale: Locale = None) -> str:
    who = _who(job, locale)
    time = duration(elapsed, locale)
    head = nt(
        locale,
        "🖼️ Here is your image, {who} — made in {time}.",
        "🖼️ Here are your {count} images, {who} — made in {time}.",
        count,
        who=who,
        time=time,
    )
    lines = [head, quote_prompt(job.prompt), details_line(job, locale)]
    note = size_note(job, locale)
    if note:
        lines.append(note)
    return "\n".join(lines)


def result_text(
    job: Job, elapsed: float, count: int, links: list[tuple[str, Text]], locale: Locale = None
) -> str:
    """The finished image's message: what it is, and the links of images that could not be
    uploaded, within Discord's limit so that the images themselves are always posted."""
    text = done_text(job, elapsed, count, locale)
    if links:
        text += "\n" + links_note(links, MESSAGE_LIMIT - len(text) - 1, locale)
    return clip(text)


def done_pointer(elapsed: float, jump_url: str, locale: Locale = None, *, video: bool = False) -> str:
    """The status message once the result is posted elsewhere: where to find it."""
    if video:
        return t(
            locale,
            "✅ **Done** in {time} — your video is here: {link}",
            time=duration(elapsed, locale),
            link=jump_url,
        )
    return t(
        locale,
        "✅ **Done** in {time} — your image is here: {link}",
        time=duration(elapsed, locale),
        link=jump_url,
    )


def failure_text(job: Job, reason: str, locale: Locale = None) -> str:
    """`reason` is the job's stored reason (`bot.core.texts.stored`): the bot's own words, rendered
    here in the reader's language, with the image API's words inside shown as they came; all inert."""
    head = t(
        locale,
        N_("❌ Sorry {who}, no video this time. {reason}")
        if job.media == "video"
        else N_("❌ Sorry {who}, no image this time. {reason}"),
        who=_who(job, locale),
        reason=inert(render(locale, from_stored(reason))),
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
    made = (
        N_("🎬 {who} made a video: {link}") if job.media == "video" else N_("🖼️ {who} made an image: {link}")
    )
    head = t(locale, made, who=f"<@{job.user_id}>", link=jump_url)
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
    """Above an image or a video that /history's Post again posted again."""
    video = job.media == "video"
    if by_user == job.user_id:
        own = N_("🎬 Video #{id} by {who}.") if video else N_("🖼️ Image #{id} by {who}.")
        head = t(locale, own, id=job.id, who=f"<@{job.user_id}>")
    else:
        head = t(
            locale,
            N_("🎬 Video #{id} by {who}, posted again by {by}.")
            if video
            else N_("🖼️ Image #{id} by {who}, posted again by {by}."),
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


def links_note(failed: list[tuple[str, Text]], budget: int = MESSAGE_LIMIT, locale: Locale = None) -> str:
    """For images that could not be uploaded: the link, with why, as many as fit in `budget`
    characters. A link is never cut (half a URL is a broken one): those that do not fit are counted."""
    head = t(locale, "Some images could not be uploaded here, so here are their links (they may expire):")
    lines = [head]
    used = len(head)
    for shown, (url, why) in enumerate(failed):
        line = f"• {plain_link(url)} ({inert(why.render(locale))})"
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


# -- personal use (the app installed to a person's account) -------------------------------------------


def _when(epoch: float, style: str = "R") -> str:
    return f"<t:{math.ceil(epoch)}:{style}>"


# One whole text per case (with or without an end, with or without a reason), rendered at the edge.
_PERSONAL_BANNED = {
    (False, False): N_(
        "You cannot use the image bot outside servers that added it: the bot's operator has blocked your "
        "personal use. It still works in servers that added the bot, under their rules."
    ),
    (True, False): N_(
        "You cannot use the image bot outside servers that added it until {time}: the bot's operator has "
        "blocked your personal use. It still works in servers that added the bot, under their rules."
    ),
    (False, True): N_(
        "You cannot use the image bot outside servers that added it: the bot's operator has blocked your "
        "personal use. Reason: {reason} It still works in servers that added the bot, under their rules."
    ),
    (True, True): N_(
        "You cannot use the image bot outside servers that added it until {time}: the bot's operator has "
        "blocked your personal use. Reason: {reason} It still works in servers that added the bot, under "
        "their rules."
    ),
}


def personal_banned_text(expires_at: float | None, reason: str | None) -> Text:
    template = _PERSONAL_BANNED[(bool(expires_at), bool(reason))]
    time = _when(expires_at, "f") if expires_at else ""
    return Text(template, (("time", time), ("reason", Verbatim(inert(reason or "")))))


PERSONAL_OFF = msg(
    "Personal use of the image bot is turned off by its operator. It still works in servers that "
    "added the bot."
)


def personal_quota_text(limit: int, resets_at: float) -> Text:
    return msg(
        "You have used all {limit} of today's personal images (in DMs, group DMs and servers without the "
        "bot, together). They reset {when} ({time}).",
        limit=limit,
        when=_when(resets_at),
        time=_when(resets_at, "t"),
    )


def personal_busy_text(running: int, limit: int) -> Text:
    return plural_msg(
        "You already have 1 image in progress (the limit is {limit}). Please wait for it to finish; "
        "see it with /queue.",
        "You already have {count} images in progress (the limit is {limit}). Please wait for one to "
        "finish; see them with /queue.",
        running,
        limit=limit,
    )


# Where a personal request was made, as its requester reads it later (a DM after 15 minutes): one whole
# sentence per kind of place.
_LATE_DELIVERY = {
    "link": N_(
        "Your image from {link} is ready; the original message could no longer be edited, so here it is."
    ),
    "private_channel": N_(
        "Your image from a group DM is ready; the original message could no longer be edited, so here it is."
    ),
    "dm": N_(
        "Your image from our DM is ready; the original message could no longer be edited, so here it is."
    ),
    "": N_(
        "Your image from the place where you asked is ready; the original message could no longer be "
        "edited, so here it is."
    ),
}
_LATE_FAILURE = {
    "link": N_("About your request from {link} (the original message could no longer be edited):"),
    "private_channel": N_(
        "About your request from a group DM (the original message could no longer be edited):"
    ),
    "dm": N_("About your request from our DM (the original message could no longer be edited):"),
    "": N_(
        "About your request from the place where you asked (the original message could no longer be edited):"
    ),
}


def _place(context: str | None, place_guild_id: int | None, channel_id: int | None) -> tuple[str, str]:
    """Which kind of place, and its link where it has one."""
    if context == "user_install_guild" and place_guild_id and channel_id:
        return "link", f"https://discord.com/channels/{place_guild_id}/{channel_id}"
    if context in ("private_channel", "dm"):
        return context, ""
    return "", ""


def late_delivery_note(
    context: str | None, place_guild_id: int | None, channel_id: int | None, locale: Locale = None
) -> str:
    kind, link = _place(context, place_guild_id, channel_id)
    return t(locale, _LATE_DELIVERY[kind], link=link)


def late_failure_note(
    context: str | None, place_guild_id: int | None, channel_id: int | None, locale: Locale = None
) -> str:
    kind, link = _place(context, place_guild_id, channel_id)
    return t(locale, _LATE_FAILURE[kind], link=link)


PERSONAL_USAGE_HEADER = N_("**Your personal use** (DMs, group DMs and servers without the bot, together)")
# -- server styles, personal settings, "Use as reference" --------------------------------------------


def style_name(name: str) -> str:
    """A style name shown inside backticks (names hold no backticks: `bot.styles.clean_style`)."""
    return f"`{name.replace('`', chr(39))}`"


def style_unknown(name: str) -> Text:
    """Made where no Discord object is at hand (a Draft): rendered where it is shown."""
    return msg(
        "There is no style called {name} in this server. Pick one from the list that appears as you type, "
        "or leave `style` out. Nothing was started and nothing was counted.",
        name=style_name(name[:40]),
    )


def style_saved(name: str, text: str, *, replaced: bool, locale: Locale = None) -> str:
    if replaced:
        head = t(locale, "Style {name} updated. `/imagine` adds this to the prompt:", name=style_name(name))
    else:
        head = t(locale, "Style {name} added. `/imagine` adds this to the prompt:", name=style_name(name))
    return f"{head}\n{quote_prompt(text, 1000)}"


def style_not_saved(reason: Text, locale: Locale = None) -> str:
    return t(locale, "The style was not saved: {reason}.", reason=reason.render(locale))


def style_removed(name: str, *, found: bool, locale: Locale = None) -> str:
    if not found:
        return t(locale, "There is no style called {name}; nothing was removed.", name=style_name(name[:40]))
    return t(
        locale,
        "Style {name} removed. Jobs already made with it keep it (Reroll and Edit too).",
        name=style_name(name),
    )


def style_list(styles: list[tuple[str, str]], most: int, locale: Locale = None) -> str:
    if not styles:
        return t(locale, "This server has no styles yet. Add one with `/imagine-admin style add`.")
    lines = [t(locale, "🎨 Styles of this server ({count} of at most {most}):", count=len(styles), most=most)]
    for name, text in styles:
        lines.append(f"{style_name(name)}\n{quote_prompt(text, 200)}")
    return "\n".join(lines)


def private_images_switched(enabled: bool, locale: Locale = None) -> str:
    if enabled:
        return t(
            locale,
            "Members may now have their images sent to them **privately** (a message only they see, or a "
            "DM), if they choose so in `/settings`. The status message in the channel says where it went.",
        )
    return t(
        locale,
        "Finished images are now always posted **in the channel**, whatever members chose in `/settings`.",
    )


DELIVERY_NAMES = {
    "channel": N_("posted in the channel"),
    "ephemeral": N_("sent privately (a message only you see; by DM after 15 minutes)"),
    "dm": N_("sent to you by direct message"),
}
_DELIVERY_NOT_ALLOWED = {
    "ephemeral": N_(
        "sent privately (a message only you see; by DM after 15 minutes) — but this server does not "
        "allow private images, so they are posted in the channel"
    ),
    "dm": N_(
        "sent to you by direct message — but this server does not allow private images, so they are "
        "posted in the channel"
    ),
}


def settings_text(
    aspect_ratio: str | None,
    style: str | None,
    delivery: str | None,
    *,
    style_exists: bool,
    private_allowed: bool,
    locale: Locale = None,
) -> str:
    shown_style = t(locale, "none")
    if style:
        shown_style = (
            style_name(style)
            if style_exists
            else t(locale, "{name} (no longer exists here: not used)", name=style_name(style))
        )
    if delivery in _DELIVERY_NOT_ALLOWED and not private_allowed:
        where = t(locale, _DELIVERY_NOT_ALLOWED[delivery])
    else:
        where = t(locale, DELIVERY_NAMES.get(delivery or "channel", DELIVERY_NAMES["channel"]))
    ratio = aspect_ratio or t(locale, "none (the image service decides)")
    return "\n".join(
        [
            t(locale, "⚙️ Your settings in this server (used when `/imagine` leaves them out):"),
            t(locale, "• Aspect ratio: {ratio}", ratio=ratio),
            t(locale, "• Style: {style}", style=shown_style),
            t(locale, "• Finished images: {where}", where=where),
            t(locale, "Change one with `/settings` and an option; `clear` resets one or all."),
        ]
    )


PRIVATE_NOT_ALLOWED = N_(
    "This server does not allow private images, so your images will be posted in the channel. "
    "A server admin can allow them with `/imagine-admin private-images`."
)


def done_privately(elapsed: float, delivery: str, locale: Locale = None) -> str:
    """The public status message of an image delivered privately: in the server's language."""
    time = duration(elapsed, locale)
    if delivery == "dm":
        return t(
            locale,
            "✅ **Done** in {time} — the image was sent to the requester by direct message.",
            time=time,
        )
    return t(
        locale,
        "✅ **Done** in {time} — the image was sent to the requester privately (only they can see it).",
        time=time,
    )


PRIVATE_DM_NOTE = N_("Here is the image you asked for, sent privately as you chose in /settings.")

REFERENCE_NO_IMAGES = N_(
    "That message has no image to use as a reference (only attached images and image embeds count)."
)
REFERENCE_TOO_MANY = N_("That message has more than 5 images; its first 5 are used as references.")
REFERENCE_DIALOG_TITLE = N_("Use as reference")
GUILD_ONLY_REFERENCE = N_("“Use as reference” works on messages in a server channel, not in DMs.")


def video_cost_line(rate: float, locale: Locale = None) -> str:
    """Each offered video duration and what it counts as: `6 s = 3 images · 10 s = 5 · 15 s = 8`. Said
    by the Animate dialog, /imagine-admin cost video and the web dashboard alike."""
    return " · ".join(
        t(locale, "{seconds} s = {count} images", seconds=seconds, count=video_cost(seconds, rate))
        if index == 0
        else f"{seconds} s = {video_cost(seconds, rate)}"
        for index, seconds in enumerate(VIDEO_DURATIONS)
    )
