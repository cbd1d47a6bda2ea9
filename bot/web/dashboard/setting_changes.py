"""What the dashboard's forms change: one function per form, each checking its fields as the
`/imagine-admin` command checks its options and then making the very store call the command makes
(which writes the admin_log row in the same transaction). Each returns how to say what changed
(bot/core/change_sentences.py, which the commands' mod-log entries use too), so the same sentence goes
on the page (with names) and in the mod-log channel (with mentions).

Every form here needs the server admin role, as every `/imagine-admin` command does."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.store import Store
from bot.core import change_sentences as say
from bot.core import reports
from bot.core.change_sentences import Describe
from bot.core.durations import DurationError, parse_duration
from bot.core.policy.prompt_rules import MAX_PATTERN_CHARS, RuleError, check_rule
from bot.core.policy.quotas import MAX_COUNT, valid_timezone
from bot.core.policy.styles import MAX_STYLE_NAME, MAX_STYLE_TEXT, StyleError, clean_style
from bot.core.texts import Text, msg
from bot.web.discord_rest import DiscordRest, GuildInfo

# The bounds of the /imagine-admin options (cogs/admin_limits.py; tests check they agree).
MAX_LIMIT = 1000
MAX_GUILD_CAP = 100_000
MAX_COOLDOWN = 86_400
MAX_RUNNING = 20
MAX_REASON = 200
MIN_VIDEO_RATE = 0.1  # images per second of video (cogs/admin_videos.py)
MAX_VIDEO_RATE = 10.0
RULE_KINDS = ("word", "regex")


class Problem(Exception):
    """A field the form cannot take; nothing was changed. The text is for the reader."""

    def __init__(self, text: Text) -> None:
        super().__init__(text.msgid)
        self.text = text


@dataclass
class Change:
    """A form's result: the sentence, and the mod-log channel it goes to (None: the server's)."""

    describe: Describe
    modlog_channel: int | None = None


@dataclass
class FormInput:
    store: Store
    rest: DiscordRest
    guild: GuildInfo
    actor_id: int
    now: float
    bot_default_quota: int
    form: Mapping[str, Any]
    known: dict[tuple[str, int], str] = field(default_factory=dict)

    @property
    def guild_id(self) -> int:
        return self.guild.id

    def text(self, name: str, most: int) -> str:
        value = self.form.get(name, "")
        return " ".join(value.split())[:most] if isinstance(value, str) else ""

    def number(self, name: str, low: int, high: int, *, optional: bool = False) -> int | None:
        raw = self.text(name, 12)
        if not raw and optional:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise Problem(
                msg(
                    "{name} must be from {low} to {high}. Nothing was changed.", name=name, low=low, high=high
                )
            )
        return value

    def switch(self, name: str) -> bool:
        return self.text(name, 5) == "on"

    async def member(self, name: str = "member") -> int:
        """A Discord user by id (as Developer Mode's Copy User ID gives it), known to Discord."""
        raw = self.text(name, 25)
        user_id = int(raw) if raw.isdigit() and len(raw) <= 20 else 0
        found = await self.rest.member(self.guild_id, user_id) if user_id else None
        shown = found.name if found is not None else None
        if shown is None and user_id:
            shown = await self.rest.user_name(user_id)
        if shown is None:
            raise Problem(
                msg("There is no Discord member with the id {id}. Nothing was changed.", id=raw or "-")
            )
        self.known[("member", user_id)] = shown
        return user_id

    def role(self) -> int:
        raw = self.text("role", 25)
        listed = {r.id: r for r in self.guild.listed_roles()}
        role = listed.get(int(raw)) if raw.isdigit() and len(raw) <= 20 else None
        if role is None:
            raise Problem(msg("Choose one of the server's roles. Nothing was changed."))
        self.known[("role", role.id)] = role.name
        return role.id


# -- limits ----------------------------------------------------------------------------------------------


async def server_limit(f: FormInput) -> Change:
    limit = f.number("limit", 0, MAX_LIMIT, optional=True)
    before = await f.store.settings.guild_policy(f.guild_id)
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, default_quota=limit)
    return Change(say.server_limit(limit, before.default_quota, f.bot_default_quota))


async def role_limit(f: FormInput) -> Change:
    role = f.role()
    limit = f.number("limit", 0, MAX_LIMIT, optional=True)
    before = (await f.store.settings.role_quotas(f.guild_id)).get(role)
    await f.store.settings.set_role_quota(f.guild_id, role, limit, f.actor_id, f.now)
    return Change(say.role_limit(role, limit, before))


async def member_limit(f: FormInput) -> Change:
    member = await f.member()
    mode = f.text("mode", 10)
    limit = f.number("limit", 0, MAX_LIMIT) if mode == "limit" else None
    unlimited = mode == "unlimited"
    await f.store.settings.set_user_quota(
        f.guild_id, member, limit=limit, unlimited=unlimited, actor_id=f.actor_id, now=f.now
    )
    return Change(say.member_limit(member, limit, unlimited))


async def credits(f: FormInput) -> Change:
    member = await f.member()
    given = f.number("credits", -MAX_LIMIT, MAX_LIMIT)
    assert given is not None
    if given == 0:
        raise Problem(msg("Nothing to change: give a positive number to add credits, negative to take back."))
    balance = await f.store.settings.grant_credits(f.guild_id, member, given, f.actor_id, f.now)
    return Change(say.credits(member, given, balance))


async def reset_today(f: FormInput) -> Change:
    member = await f.member()
    given = await f.store.settings.reset_today(f.guild_id, member, f.actor_id, f.now)
    return Change(say.reset_today(member, given))


async def server_cap(f: FormInput) -> Change:
    cap = f.number("cap", 1, MAX_GUILD_CAP, optional=True)
    before = await f.store.settings.guild_policy(f.guild_id)
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, daily_cap=cap)
    return Change(say.server_cap(cap, before.daily_cap))


async def exempt(f: FormInput) -> Change:
    enabled = f.switch("enabled")
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, exempt_managers=enabled)
    return Change(say.exempt(enabled))


async def refund_cancelled(f: FormInput) -> Change:
    enabled = f.switch("enabled")
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, refund_cancelled=enabled)
    return Change(say.refund_cancelled(enabled))


# -- pacing and time zone ----------------------------------------------------------------------------------


async def cooldown(f: FormInput) -> Change:
    seconds = f.number("seconds", 0, MAX_COOLDOWN)
    assert seconds is not None
    before = await f.store.settings.guild_policy(f.guild_id)
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, cooldown_seconds=seconds)
    return Change(say.cooldown(seconds, before.cooldown_seconds))


async def running(f: FormInput) -> Change:
    jobs = f.number("jobs", 1, MAX_RUNNING)
    assert jobs is not None
    before = await f.store.settings.guild_policy(f.guild_id)
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, max_running=jobs)
    return Change(say.running(jobs, before.max_running))


async def timezone(f: FormInput) -> Change:
    zone = f.text("zone", 64)
    if not valid_timezone(zone):
        raise Problem(
            msg(
                "{zone} is not a time zone I know. Pick one from the list, such as `Europe/Paris`, "
                "`America/New_York` or `UTC`. Nothing was changed.",
                zone=reports.code(zone),
            )
        )
    before = await f.store.settings.guild_policy(f.guild_id)
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, timezone=zone)
    return Change(say.timezone(zone, before.timezone))


# -- moderation: bans, prompt rules, mod-log, styles, private images ---------------------------------------


async def ban(f: FormInput) -> Change:
    member = await f.member()
    reason = f.text("reason", MAX_REASON) or None
    duration = f.text("duration", 40)
    seconds: int | None = None
    if duration:
        try:
            seconds = parse_duration(duration)
        except DurationError as error:
            raise Problem(msg("The member was not banned: {error}.", error=error.text)) from None
    expires_at = None if seconds is None else f.now + seconds
    await f.store.settings.ban(
        f.guild_id, member, reason=reason, expires_at=expires_at, actor_id=f.actor_id, now=f.now
    )
    return Change(say.ban(member, reason, seconds))


async def unban(f: FormInput) -> Change:
    member = await f.member()
    lifted = await f.store.settings.unban(f.guild_id, member, f.actor_id, f.now)
    return Change(say.unban(member, lifted))


async def rule_add(f: FormInput) -> Change:
    kind = f.text("kind", 10)
    pattern = str(f.form.get("pattern", "")).strip()
    if kind not in RULE_KINDS or not pattern or len(pattern) > MAX_PATTERN_CHARS:
        raise Problem(
            msg(
                "A rule is a word or a regular expression of 1 to {most} characters. Nothing was changed.",
                most=MAX_PATTERN_CHARS,
            )
        )
    try:
        rule = await f.store.settings.add_rule(f.guild_id, kind, check_rule(kind, pattern), f.actor_id, f.now)
    except RuleError as error:
        raise Problem(msg("That rule was not added: {error}.", error=error.text)) from None
    return Change(say.rule_added(rule))


async def rule_remove(f: FormInput) -> Change:
    rule_id = f.number("rule", 1, 2**53)
    assert rule_id is not None
    removed = await f.store.settings.remove_rule(f.guild_id, rule_id, f.actor_id, f.now)
    if removed is None:
        raise Problem(msg("There is no rule #{id} in this server. Nothing was changed.", id=rule_id))
    return Change(say.rule_removed(removed))


async def modlog(f: FormInput) -> Change:
    raw = f.text("channel", 25)
    before = await f.store.settings.guild_policy(f.guild_id)
    if not raw:
        await f.store.settings.update_policy(
            f.guild_id, f.actor_id, f.now, modlog_channel_id=None, modlog_finished=False
        )
        # Said where the mod-log was: the last entry that channel gets.
        return Change(say.modlog_off(), modlog_channel=before.modlog_channel_id)
    channels = dict(await f.rest.text_channels(f.guild_id))
    channel = int(raw) if raw.isdigit() and len(raw) <= 20 else 0
    if channel not in channels:
        raise Problem(msg("Choose one of the server's text channels. Nothing was changed."))
    f.known[("channel", channel)] = channels[channel]
    finished = f.switch("finished")
    await f.store.settings.update_policy(
        f.guild_id, f.actor_id, f.now, modlog_channel_id=channel, modlog_finished=finished
    )
    return Change(say.modlog_set(channel, finished))


async def style_add(f: FormInput) -> Change:
    name = f.text("name", MAX_STYLE_NAME * 2)
    text = str(f.form.get("text", "")).strip()[: MAX_STYLE_TEXT * 2]
    try:
        style = clean_style(name, text)
        replaced = await f.store.styles.add(f.guild_id, style, f.actor_id, f.now)
    except StyleError as error:
        raise Problem(msg("The style was not saved: {reason}.", reason=error.text)) from None
    return Change(say.style_saved(style.name, replaced))


async def style_remove(f: FormInput) -> Change:
    name = f.text("name", 100)
    removed = await f.store.styles.remove(f.guild_id, name, f.actor_id, f.now)
    if removed is None:
        raise Problem(
            msg("There is no style called {name}; nothing was removed.", name=reports.code(name[:40]))
        )
    return Change(say.style_removed(removed.name))


async def private_images(f: FormInput) -> Change:
    enabled = f.switch("enabled")
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, private_images=enabled)
    return Change(say.private_images(enabled))


# -- images per request (units: /imagine-admin count-limit) -------------------------------------------------


async def count_limit(f: FormInput) -> Change:
    limit = f.number("limit", 1, MAX_COUNT, optional=True)
    server = (await f.store.settings.guild_policy(f.guild_id)).count_limit
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, count_limit=limit)
    return Change(say.count_limit(limit, server))


async def role_count_limit(f: FormInput) -> Change:
    role = f.role()
    limit = f.number("limit", 1, MAX_COUNT, optional=True)
    server = (await f.store.settings.guild_policy(f.guild_id)).count_limit
    before = (await f.store.settings.role_count_limits(f.guild_id)).get(role)
    await f.store.settings.set_role_count_limit(f.guild_id, role, limit, f.actor_id, f.now)
    return Change(say.role_count_limit(role, limit, before, server))


async def member_count_limit(f: FormInput) -> Change:
    member = await f.member()
    limit = f.number("limit", 1, MAX_COUNT, optional=True)
    before = await f.store.settings.user_count_limit(f.guild_id, member)
    await f.store.settings.set_user_count_limit(f.guild_id, member, limit, f.actor_id, f.now)
    return Change(say.member_count_limit(member, limit, before))


# -- videos and the server's gallery (/imagine-admin cost video, videos, gallery) ---------------------------


async def video_rate(f: FormInput) -> Change:
    try:
        given = float(f.text("rate", 12))
    except ValueError:
        given = math.nan
    if not math.isfinite(given) or not MIN_VIDEO_RATE <= given <= MAX_VIDEO_RATE:
        raise Problem(
            msg(
                "The rate must be from {low} to {high} images per second. Nothing was changed.",
                low=f"{MIN_VIDEO_RATE:g}",
                high=f"{MAX_VIDEO_RATE:g}",
            )
        )
    rate = round(given, 3)
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, video_rate=rate)
    return Change(say.video_rate(rate))


async def videos(f: FormInput) -> Change:
    enabled = f.switch("enabled")
    await f.store.settings.update_policy(f.guild_id, f.actor_id, f.now, videos_enabled=enabled)
    return Change(say.videos(enabled))


async def gallery(f: FormInput) -> Change:
    switches = await f.store.gallery.set_switches(
        f.guild_id, f.actor_id, f.now, enabled=f.switch("enabled"), hide_banned=f.switch("hide_banned")
    )
    return Change(say.gallery(switches.enabled, switches.hide_banned))


# Each form's name in the address (POST /dashboard/{server}/change/{name}) and what it does.
CHANGES: dict[str, Callable[[FormInput], Awaitable[Change]]] = {
    "server-limit": server_limit,
    "role-limit": role_limit,
    "member-limit": member_limit,
    "credits": credits,
    "reset-today": reset_today,
    "server-cap": server_cap,
    "exempt": exempt,
    "refund-cancelled": refund_cancelled,
    "cooldown": cooldown,
    "running": running,
    "timezone": timezone,
    "ban": ban,
    "unban": unban,
    "rule-add": rule_add,
    "rule-remove": rule_remove,
    "modlog": modlog,
    "style-add": style_add,
    "style-remove": style_remove,
    "private-images": private_images,
    "count-limit": count_limit,
    "role-count-limit": role_count_limit,
    "member-count-limit": member_count_limit,
    "video-rate": video_rate,
    "videos": videos,
    "gallery": gallery,
}
