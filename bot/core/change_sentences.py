"""What a server settings change says, whichever way it was made: the sentence the dashboard shows on
its page and posts in the mod-log channel, and the mod-log entry an `/imagine-admin` command posts.

Each builder takes what changed (and what it was) and returns a `Describe`: the sentence in a language,
naming members, roles and channels as the reader sees them (`Names`): by name on a web page, by mention
in Discord. The commands' own private answers say more (how limits combine, when the day resets); the
mod-log says the same short sentence for a change made on the web or by command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core import messages, reports
from bot.core.durations import describe_seconds
from bot.core.i18n import nt, t
from bot.core.policy.prompt_rules import PromptRule
from bot.core.policy.quotas import MAX_COUNT


@dataclass
class Names:
    """How a sentence names members, roles and channels: by name on a page, by mention in Discord
    (which shows the name to each reader and, with no pings allowed, notifies no one)."""

    mentions: bool
    known: dict[tuple[str, int], str] = field(default_factory=dict)

    def member(self, user_id: int) -> str:
        return f"<@{user_id}>" if self.mentions else "@" + self.known.get(("member", user_id), str(user_id))

    def role(self, role_id: int) -> str:
        return f"<@&{role_id}>" if self.mentions else "@" + self.known.get(("role", role_id), str(role_id))

    def channel(self, channel_id: int) -> str:
        return f"<#{channel_id}>" if self.mentions else "#" + self.known.get(("channel", channel_id), "?")


Describe = Callable[[Names, str], str]
IN_DISCORD = Names(mentions=True)


def modlog_entry(locale: str, actor_id: int, change: str, *, on_dashboard: bool) -> str:
    """A change as the mod-log channel shows it: who made it, where, and the sentence."""
    if on_dashboard:
        return t(locale, "🛠️ {actor} on the web dashboard: {change}", actor=f"<@{actor_id}>", change=change)
    return t(locale, "🛠️ {actor} with /imagine-admin: {change}", actor=f"<@{actor_id}>", change=change)


def _images(count: int | None, lo: str) -> str:
    return t(lo, "none") if count is None else nt(lo, "1 image", "{count} images", count)


# -- limits ----------------------------------------------------------------------------------------------


def default_limit_text(default: int | None, bot_default: int, locale: str) -> str:
    """The server's default daily limit, or the bot's when the server has none of its own."""
    if default is None:
        return t(locale, "the bot default, {limit}", limit=reports.limit_text(bot_default, locale))
    return reports.limit_text(default, locale)


def server_limit(limit: int | None, was: int | None, bot_default: int) -> Describe:
    return lambda n, lo: t(
        lo,
        "The server's daily limit is now {limit} (was {was}).",
        limit=default_limit_text(limit, bot_default, lo),
        was=default_limit_text(was, bot_default, lo),
    )


def role_limit(role: int, limit: int | None, was: int | None) -> Describe:
    def describe(n: Names, lo: str) -> str:
        before = reports.optional_limit(was, none=t(lo, "none"), locale=lo)
        if limit is None:
            return t(
                lo,
                "{role} no longer has a daily limit of its own (was {was}).",
                role=n.role(role),
                was=before,
            )
        return t(
            lo,
            "Daily limit for {role} is now {limit} (was {was}).",
            role=n.role(role),
            limit=reports.limit_text(limit, lo),
            was=before,
        )

    return describe


def member_limit(member: int, limit: int | None, unlimited: bool) -> Describe:
    def describe(n: Names, lo: str) -> str:
        if unlimited:
            return t(lo, "{member} now has no daily limit in this server.", member=n.member(member))
        if limit is not None:
            return t(
                lo,
                "{member} now has a personal limit of {limit}.",
                member=n.member(member),
                limit=reports.limit_text(limit, lo),
            )
        return t(
            lo,
            "{member}'s personal limit is cleared: they follow their roles and the server default again.",
            member=n.member(member),
        )

    return describe


def credits(member: int, given: int, balance: int) -> Describe:
    def describe(n: Names, lo: str) -> str:
        if given > 0:
            change = nt(
                lo,
                "Gave {member} 1 one-off credit",
                "Gave {member} {count} one-off credits",
                given,
                member=n.member(member),
            )
        else:
            change = nt(
                lo,
                "Took back 1 credit from {member}",
                "Took back {count} credits from {member}",
                -given,
                member=n.member(member),
            )
        return t(lo, "{change}; they now have {balance}.", change=change, balance=balance)

    return describe


def reset_today(member: int, given: int) -> Describe:
    def describe(n: Names, lo: str) -> str:
        if given:
            return nt(
                lo,
                "Gave {member} back 1 use of today.",
                "Gave {member} back {count} uses of today.",
                given,
                member=n.member(member),
            )
        return t(lo, "{member} had no finished uses today to give back.", member=n.member(member))

    return describe


def server_cap(cap: int | None, was: int | None) -> Describe:
    def describe(n: Names, lo: str) -> str:
        before = t(lo, "none") if was is None else nt(lo, "1 image", "{count} images", was)
        if cap is None:
            return t(lo, "The server has no daily cap any more (was {was}).", was=before)
        return t(
            lo,
            "The whole server can now make {count} a day together (was {was}).",
            count=nt(lo, "1 image", "{count} images", cap),
            was=before,
        )

    return describe


def exempt(enabled: bool) -> Describe:
    if enabled:
        return lambda n, lo: t(
            lo, "The server owner and members with Manage Server are now exempt from the limits."
        )
    return lambda n, lo: t(
        lo, "The server owner and members with Manage Server now follow the same limits as everyone."
    )


def refund_cancelled(enabled: bool) -> Describe:
    if enabled:
        return lambda n, lo: t(lo, "A job its requester cancels is now given back: it does not count.")
    return lambda n, lo: t(lo, "A job its requester cancels now counts against the limit.")


# -- pacing and time zone ----------------------------------------------------------------------------------


def cooldown(seconds: int, was: int) -> Describe:
    def describe(n: Names, lo: str) -> str:
        before = describe_seconds(was, lo) if was else t(lo, "none")
        if seconds:
            return t(
                lo,
                "Members now wait {time} between two requests (was {was}).",
                time=describe_seconds(seconds, lo),
                was=before,
            )
        return t(lo, "There is no cooldown any more (was {was}).", was=before)

    return describe


def running(jobs: int, was: int) -> Describe:
    return lambda n, lo: t(
        lo,
        "A member may now have {count} running at once (was {was}).",
        count=nt(lo, "1 image", "{count} images", jobs),
        was=was,
    )


def timezone(zone: str, was: str) -> Describe:
    return lambda n, lo: t(
        lo, "The server's day now starts at 00:00 in {zone} (was {was}).", zone=zone, was=was
    )


# -- moderation: bans, prompt rules, mod-log, styles, private images ---------------------------------------


def ban(member: int, reason: str | None, seconds: int | None) -> Describe:
    """`seconds`: how long the ban lasts; None until lifted."""

    def describe(n: Names, lo: str) -> str:
        if seconds is None:
            text = t(
                lo,
                "{member} cannot use the image bot in this server until unbanned.",
                member=n.member(member),
            )
        else:
            text = t(
                lo,
                "{member} cannot use the image bot in this server for {time}.",
                member=n.member(member),
                time=describe_seconds(seconds, lo),
            )
        return text + (t(lo, " Reason: {reason}.", reason=reports.code(reason)) if reason else "")

    return describe


def unban(member: int, lifted: bool) -> Describe:
    if lifted:
        return lambda n, lo: t(lo, "{member} can use the image bot again.", member=n.member(member))
    return lambda n, lo: t(lo, "{member} was not banned; nothing to lift.", member=n.member(member))


def rule_added(rule: PromptRule) -> Describe:
    return lambda n, lo: t(lo, "Added prompt rule {rule}.", rule=reports.rule_text(rule))


def rule_removed(rule: PromptRule) -> Describe:
    return lambda n, lo: t(lo, "Removed prompt rule {rule}.", rule=reports.rule_text(rule))


def modlog_off() -> Describe:
    return lambda n, lo: t(lo, "The mod-log is off.")


def modlog_set(channel: int, finished: bool) -> Describe:
    if finished:
        return lambda n, lo: t(
            lo, "The mod-log is now {channel}: refusals and finished images.", channel=n.channel(channel)
        )
    return lambda n, lo: t(lo, "The mod-log is now {channel}: refusals.", channel=n.channel(channel))


def style_saved(name: str, replaced: bool) -> Describe:
    if replaced:
        return lambda n, lo: t(lo, "Style {name} updated.", name=reports.code(name))
    return lambda n, lo: t(lo, "Style {name} added.", name=reports.code(name))


def style_removed(name: str) -> Describe:
    return lambda n, lo: t(lo, "Style {name} removed.", name=reports.code(name))


def private_images(enabled: bool) -> Describe:
    if enabled:
        return lambda n, lo: t(lo, "Members may now have their images sent to them privately.")
    return lambda n, lo: t(lo, "Finished images are now always posted in the channel.")


# -- images per request (units: /imagine-admin count-limit) -------------------------------------------------


def count_limit(limit: int | None, was: int | None) -> Describe:
    return lambda n, lo: t(
        lo,
        "Members may now ask for up to **{count}** per request (was {was}). Role and member limits "
        "still take precedence.",
        count=_images(limit or MAX_COUNT, lo),
        was=_images(was, lo),
    )


def role_count_limit(role: int, limit: int | None, was: int | None, server: int | None) -> Describe:
    def describe(n: Names, lo: str) -> str:
        if limit is None:
            return t(
                lo,
                "{role} no longer has a count limit of its own (was {was}); its members follow their "
                "other roles or the server's, {server}.",
                role=n.role(role),
                was=_images(was, lo),
                server=_images(server, lo),
            )
        return t(
            lo,
            "Members of {role} may now ask for up to **{count}** per request (was {was}). A member "
            "with several such roles gets the highest; a member's own limit wins.",
            role=n.role(role),
            count=_images(limit, lo),
            was=_images(was, lo),
        )

    return describe


def member_count_limit(member: int, limit: int | None, was: int | None) -> Describe:
    def describe(n: Names, lo: str) -> str:
        if limit is None:
            return t(
                lo,
                "{member}'s own count limit is cleared (was {was}): they follow their roles or the "
                "server's again.",
                member=n.member(member),
                was=_images(was, lo),
            )
        return t(
            lo,
            "{member} may now ask for up to **{count}** per request (was {was}).",
            member=n.member(member),
            count=_images(limit, lo),
            was=_images(was, lo),
        )

    return describe


# -- videos and the server's gallery (/imagine-admin cost video, videos, gallery) ---------------------------


def video_rate(rate: float) -> Describe:
    return lambda n, lo: t(
        lo,
        "A second of video now counts as {rate} images here (rounded up per video): {costs}.",
        rate=f"{rate:g}",
        costs=messages.video_cost_line(rate, lo),
    )


def videos(enabled: bool) -> Describe:
    if enabled:
        return lambda n, lo: t(lo, "Videos are on: members may use /animate and the Animate button.")
    return lambda n, lo: t(lo, "Videos are off: /animate and the Animate button are refused in this server.")


def gallery(enabled: bool, hide_banned: bool) -> Describe:
    def describe(n: Names, lo: str) -> str:
        if not enabled:
            return t(lo, "The web gallery of this server is **off**.")
        text = t(
            lo,
            "The web gallery of this server is **on**: its members see the images posted here (never "
            "private ones) after signing in with Discord.",
        )
        if hide_banned:
            return text + " " + t(lo, "Images of members banned from the image bot are hidden.")
        return text + " " + t(lo, "Images of members banned from the image bot stay visible.")

    return describe
