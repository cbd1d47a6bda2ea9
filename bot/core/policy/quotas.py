"""The quota policy: who may start a job now, and why not. Pure functions over a snapshot that the
store reads inside the same transaction that records the decision, so check and reservation are one."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core import messages
from bot.core.policy.prompt_rules import RuleMatch
from bot.core.texts import Text, Verbatim, msg, plural_msg
from bot.core.video_contract import DEFAULT_IMAGES_PER_VIDEO_SECOND

DEFAULT_MAX_RUNNING = 2

# Refusal reasons as stored in the usage log.
BANNED = "banned"
BLOCKED_PROMPT = "blocked_prompt"
DISABLED = "disabled"
CONCURRENCY = "concurrency"
COOLDOWN = "cooldown"
QUOTA = "quota"
GUILD_CAP = "guild_cap"
BAD_INPUT = "bad_input"


@dataclass(frozen=True)
class Member:
    """Who is asking, as the policy needs it (built from a Discord member by the cog)."""

    guild_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    is_owner: bool = False
    can_manage_guild: bool = False


@dataclass(frozen=True)
class GuildPolicy:
    guild_id: int
    default_quota: int | None = None  # None: the bot-wide DEFAULT_DAILY_QUOTA
    timezone: str = "UTC"
    cooldown_seconds: int = 0
    max_running: int = DEFAULT_MAX_RUNNING
    daily_cap: int | None = None  # all members together; None: no cap
    exempt_managers: bool = False
    modlog_channel_id: int | None = None
    modlog_finished: bool = False
    refund_cancelled: bool = False  # a cancelled job counts unless the guild says otherwise
    private_images: bool = False  # members may have their images delivered privately (/settings)
    video_rate: float = DEFAULT_IMAGES_PER_VIDEO_SECOND  # images a second of video counts as
    videos_enabled: bool = True  # /imagine-admin videos on|off


@dataclass(frozen=True)
class UserOverride:
    daily_limit: int | None = None
    unlimited: bool = False
    credits: int = 0


@dataclass(frozen=True)
class Ban:
    reason: str | None
    expires_at: float | None  # None: until lifted
    banned_by: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything the decision depends on, read in one transaction."""

    member: Member
    policy: GuildPolicy
    global_default: int
    role_limits: dict[int, int] = field(default_factory=dict)  # only the member's roles
    override: UserOverride = UserOverride()
    ban: Ban | None = None
    used_today: int = 0
    guild_used_today: int = 0
    running: int = 0
    last_request_at: float | None = None
    now: float = 0.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None = None  # one of the refusal reasons above
    message: Text | None = None  # what the member reads when refused, rendered in their language
    uses_credit: bool = False
    limit: int | None = None  # None: unlimited
    matched_rule: RuleMatch | None = None
    retry_at: float | None = None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def day_bounds(now: float, timezone: str) -> tuple[float, float]:
    """Start of the guild's current day and the moment the next one begins, as epoch seconds."""
    tz = zone(timezone)
    local = datetime.fromtimestamp(now, tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Adding a day to the wall-clock date, then localising, keeps DST days 23 or 25 hours long.
    following = datetime.combine(start.date() + timedelta(days=1), start.timetz().replace(tzinfo=None), tz)
    return start.timestamp(), following.timestamp()


def month_start(now: float, timezone: str) -> float:
    local = datetime.fromtimestamp(now, zone(timezone))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def discord_time(epoch: float, style: str = "R") -> str:
    """Discord timestamp markup: each reader sees it in their own time zone."""
    return f"<t:{math.ceil(epoch)}:{style}>"


def is_exempt(snapshot: Snapshot) -> bool:
    member = snapshot.member
    return snapshot.policy.exempt_managers and (member.is_owner or member.can_manage_guild)


def effective_limit(snapshot: Snapshot) -> int | None:
    """The member's daily limit: personal override, else the most generous of their roles, else the
    guild default, else the bot default. None means unlimited; 0 means the feature is off."""
    override = snapshot.override
    if override.unlimited or is_exempt(snapshot):
        return None
    if override.daily_limit is not None:
        return override.daily_limit
    if snapshot.role_limits:
        return max(snapshot.role_limits.values())
    if snapshot.policy.default_quota is not None:
        return snapshot.policy.default_quota
    return snapshot.global_default


# Member-facing texts are data (`bot.core.texts`): the edge renders them in the member's language.
BLOCKED_TEXT = msg("This prompt is not allowed in this server. Please rephrase it.")
UNCHECKED_TEXT = msg(
    "This prompt could not be checked against this server's rules, so it was not sent (nothing was "
    "counted). Please shorten it or use fewer special characters, and try again."
)


def ban_text(ban: Ban) -> Text:
    """Why a banned member is turned away; the moderator's reason is their own words, not translated."""
    until = discord_time(ban.expires_at, "f") if ban.expires_at else None
    if ban.reason and until:
        return msg(
            "You cannot use the image bot in this server until {time}. Reason: {reason}",
            time=until,
            reason=Verbatim(ban.reason),
        )
    if ban.reason:
        return msg(
            "You cannot use the image bot in this server. Reason: {reason}", reason=Verbatim(ban.reason)
        )
    if until:
        return msg("You cannot use the image bot in this server until {time}.", time=until)
    return msg("You cannot use the image bot in this server.")


def decide(snapshot: Snapshot, rule_match: RuleMatch | None) -> Decision:
    """The decision, given what the prompt rules said about the prompt (checked beforehand, outside
    the transaction, because matching is CPU work that must not hold the database)."""
    now = snapshot.now
    _, reset = day_bounds(now, snapshot.policy.timezone)
    resets = msg(
        "Your quota resets {when} ({time}).", when=discord_time(reset), time=discord_time(reset, "t")
    )

    ban = snapshot.ban
    if ban is not None and (ban.expires_at is None or ban.expires_at > now):
        return Decision(False, BANNED, ban_text(ban))

    if rule_match is not None:
        text = BLOCKED_TEXT if rule_match.rule is not None else UNCHECKED_TEXT
        return Decision(False, BLOCKED_PROMPT, text, matched_rule=rule_match)

    limit = effective_limit(snapshot)
    exempt = is_exempt(snapshot)
    if limit == 0 and snapshot.override.credits <= 0:
        return Decision(
            False, DISABLED, msg("Image generation is not enabled for you in this server."), limit=0
        )

    if not exempt and snapshot.running >= snapshot.policy.max_running:
        return Decision(
            False,
            CONCURRENCY,
            plural_msg(
                "You already have an image in progress (the limit is {limit}). Please wait for it "
                "to finish; see it with /queue.",
                "You already have {count} images in progress (the limit is {limit}). Please wait "
                "for one to finish; see them with /queue.",
                snapshot.running,
                limit=snapshot.policy.max_running,
            ),
            limit=limit,
        )

    cooldown = snapshot.policy.cooldown_seconds
    if not exempt and cooldown > 0 and snapshot.last_request_at is not None:
        ready = snapshot.last_request_at + cooldown
        if ready > now:
            return Decision(
                False,
                COOLDOWN,
                msg(
                    "Please wait a little: you can ask again {when}. {resets}",
                    when=discord_time(ready),
                    resets=resets,
                ),
                limit=limit,
                retry_at=ready,
            )

    uses_credit = False
    if limit is not None and snapshot.used_today >= limit:
        if snapshot.override.credits > 0:
            uses_credit = True
        else:
            return Decision(
                False,
                QUOTA,
                msg("You have used all {limit} of today's images. {resets}", limit=limit, resets=resets),
                limit=limit,
                retry_at=reset,
            )

    cap = snapshot.policy.daily_cap
    if not exempt and cap is not None and snapshot.guild_used_today >= cap:
        return Decision(
            False,
            GUILD_CAP,
            msg(
                "This server has used all {cap} of today's images. The count resets {when} ({time}).",
                cap=cap,
                when=discord_time(reset),
                time=discord_time(reset, "t"),
            ),
            limit=limit,
            retry_at=reset,
        )
    return Decision(True, limit=limit, uses_credit=uses_credit)


@dataclass(frozen=True)
class PersonalSnapshot:
    """Personal use (the app installed to a person's account): one daily limit across every DM, group
    DM and server without the bot, in UTC days, and the operator's ban. Read in one transaction."""

    user_id: int
    limit: int  # 0: personal use is off
    ban: Ban | None = None
    used_today: int = 0
    running: int = 0
    max_running: int = DEFAULT_MAX_RUNNING
    now: float = 0.0


def decide_personal(snapshot: PersonalSnapshot, rule_match: RuleMatch | None = None) -> Decision:
    now = snapshot.now
    _, reset = day_bounds(now, "UTC")
    ban = snapshot.ban
    if ban is not None and (ban.expires_at is None or ban.expires_at > now):
        return Decision(False, BANNED, messages.personal_banned_text(ban.expires_at, ban.reason))
    if rule_match is not None:
        text = BLOCKED_TEXT if rule_match.rule is not None else UNCHECKED_TEXT
        return Decision(False, BLOCKED_PROMPT, text, matched_rule=rule_match)
    if snapshot.limit <= 0:
        return Decision(False, DISABLED, messages.PERSONAL_OFF, limit=0)
    if snapshot.running >= snapshot.max_running:
        text = messages.personal_busy_text(snapshot.running, snapshot.max_running)
        return Decision(False, CONCURRENCY, text, limit=snapshot.limit)
    if snapshot.used_today >= snapshot.limit:
        text = messages.personal_quota_text(snapshot.limit, reset)
        return Decision(False, QUOTA, text, limit=snapshot.limit, retry_at=reset)
    return Decision(True, limit=snapshot.limit)
