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

MAX_COUNT = 4
"""The most tasks (images) one request may ask for: Discord shows up to four images as one mosaic."""
DEFAULT_MAX_RUNNING = MAX_COUNT
"""Units a member may have running at once unless the server says otherwise (`concurrency`): the
running cap counts tasks, so the default lets the largest request run whole."""

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
    count_limit: int = MAX_COUNT  # the most images one request may ask for (/imagine-admin count-limit)


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
    last_request_units: int = 1  # the cooldown after a request grows with its units
    now: float = 0.0


@dataclass(frozen=True)
class Decision:
    """What admission decided about a request of `count` tasks of `units_per_task` units each.

    `fits` is how many of the asked tasks would be admitted right now: all of them when allowed; when
    refused because the amount does not fit (the running cap, the daily quota with its credits, the
    server's daily cap) the largest smaller count that would, so the command can offer it; 0 for any
    other refusal (a ban, a blocked prompt, the cooldown...). A task fits only whole: a video of 3 units
    with 2 units left does not fit, and a request of N images with k left fits k."""

    allowed: bool
    reason: str | None = None  # one of the refusal reasons above
    message: Text | None = None  # what the member reads when refused, rendered in their language
    limit: int | None = None  # None: unlimited
    matched_rule: RuleMatch | None = None
    retry_at: float | None = None
    fits: int = 0
    credit_units: int = 0  # of the units reserved, how many one-off credits pay for (the last tasks')

    @property
    def uses_credit(self) -> bool:
        return self.credit_units > 0


def member_count_limit(policy: GuildPolicy, role_limits: dict[int, int], own: int | None) -> int:
    """The most images one request of this member may ask for: their own limit, else the highest
    among their roles that have one, else the server's (like the daily limits), within 1..MAX_COUNT."""
    if own is not None:
        limit = own
    elif role_limits:
        limit = max(role_limits.values())
    else:
        limit = policy.count_limit
    return min(MAX_COUNT, max(1, limit))


def tasks_fitting(room: int, units_per_task: int, *, alone: bool = False) -> int:
    """How many whole tasks of `units_per_task` fit in `room` units. With `alone` (nothing of the
    member's is running) one task fits even if it alone is larger than the room: a video that costs
    more than the running cap may still run, by itself."""
    whole = max(0, room) // max(1, units_per_task)
    return max(whole, 1) if alone else whole


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


def decide(
    snapshot: Snapshot, rule_match: RuleMatch | None, count: int = 1, units_per_task: int = 1
) -> Decision:
    """The decision on a request of `count` tasks of `units_per_task` units each (an image is 1, a
    video `video_contract.video_cost`), given what the prompt rules said about the prompt (checked
    beforehand, outside the transaction, because matching is CPU work that must not hold the
    database). Quotas, credits, the server's cap, the cooldown and the running cap count units."""
    now = snapshot.now
    asked = count * units_per_task
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
    credits = max(0, snapshot.override.credits)
    if limit == 0 and credits <= 0:
        return Decision(
            False, DISABLED, msg("Image generation is not enabled for you in this server."), limit=0
        )

    max_running = snapshot.policy.max_running
    if not exempt and snapshot.running >= max_running:
        return Decision(False, CONCURRENCY, busy_text(snapshot.running, max_running), limit=limit)

    cooldown = snapshot.policy.cooldown_seconds
    if not exempt and cooldown > 0 and snapshot.last_request_at is not None:
        # Four images at once wait as long as four requests of one would have.
        ready = snapshot.last_request_at + cooldown * max(1, snapshot.last_request_units)
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

    # What fits of the amount: each limit in whole tasks; the smallest one binds.
    left = None if limit is None else max(0, limit - snapshot.used_today)
    room = {
        QUOTA: count if left is None else tasks_fitting(left + credits, units_per_task),
        GUILD_CAP: count,
        CONCURRENCY: count,
    }
    cap = snapshot.policy.daily_cap
    if not exempt and cap is not None:
        room[GUILD_CAP] = tasks_fitting(cap - snapshot.guild_used_today, units_per_task)
    if not exempt:
        room[CONCURRENCY] = tasks_fitting(
            max_running - snapshot.running, units_per_task, alone=snapshot.running == 0
        )
    fits = min(count, *room.values())
    if fits >= count:
        credit_units = 0 if left is None else max(0, asked - left)
        return Decision(True, limit=limit, fits=count, credit_units=credit_units)
    binding = min(room, key=lambda reason: room[reason])  # ties: quota, then the cap, then running
    if binding == QUOTA:
        assert left is not None and limit is not None
        if left + credits <= 0:
            text = msg("You have used all {limit} of today's images. {resets}", limit=limit, resets=resets)
        else:
            text = plural_msg(
                "You have 1 image left today, and this request needs {asked}. {resets}",
                "You have {count} images left today, and this request needs {asked}. {resets}",
                left + credits,
                asked=asked,
                resets=resets,
            )
        return Decision(False, QUOTA, text, limit=limit, retry_at=reset, fits=fits)
    if binding == GUILD_CAP:
        assert cap is not None
        remaining = max(0, cap - snapshot.guild_used_today)
        when = {"when": discord_time(reset), "time": discord_time(reset, "t")}
        if remaining <= 0:
            text = msg(
                "This server has used all {cap} of today's images. The count resets {when} ({time}).",
                cap=cap,
                **when,
            )
        else:
            text = plural_msg(
                "This server has 1 of today's {cap} images left, and this request needs {asked}. The "
                "count resets {when} ({time}).",
                "This server has {count} of today's {cap} images left, and this request needs {asked}. "
                "The count resets {when} ({time}).",
                remaining,
                cap=cap,
                asked=asked,
                **when,
            )
        return Decision(False, GUILD_CAP, text, limit=limit, retry_at=reset, fits=fits)
    text = running_text(snapshot.running, max_running, asked)
    return Decision(False, CONCURRENCY, text, limit=limit, fits=fits)


def running_text(running: int, max_running: int, asked: int) -> Text:
    """The running cap has room, but not for the whole request."""
    return msg(
        "You may have {limit} images in progress at once and have {running}; this request needs "
        "{asked}. Please wait for some to finish; see them with /queue.",
        limit=max_running,
        running=running,
        asked=asked,
    )


def personal_left_text(left: int, asked: int, resets_at: float) -> Text:
    return plural_msg(
        "You have 1 personal image left today, and this request needs {asked}. They reset {when} ({time}).",
        "You have {count} personal images left today, and this request needs {asked}. They reset {when} "
        "({time}).",
        left,
        asked=asked,
        when=discord_time(resets_at),
        time=discord_time(resets_at, "t"),
    )


def busy_text(running: int, max_running: int) -> Text:
    """The member's running tasks already fill the running cap."""
    return plural_msg(
        "You already have an image in progress (the limit is {limit}). Please wait for it "
        "to finish; see it with /queue.",
        "You already have {count} images in progress (the limit is {limit}). Please wait "
        "for one to finish; see them with /queue.",
        running,
        limit=max_running,
    )


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


def decide_personal(
    snapshot: PersonalSnapshot, rule_match: RuleMatch | None = None, count: int = 1, units_per_task: int = 1
) -> Decision:
    """Personal use's decision on `count` tasks of `units_per_task` units (see `decide`)."""
    now = snapshot.now
    asked = count * units_per_task
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
    left = max(0, snapshot.limit - snapshot.used_today)
    by_quota = tasks_fitting(left, units_per_task)
    by_running = tasks_fitting(
        snapshot.max_running - snapshot.running, units_per_task, alone=snapshot.running == 0
    )
    fits = min(count, by_quota, by_running)
    if fits >= count:
        return Decision(True, limit=snapshot.limit, fits=count)
    if by_quota <= by_running:
        if left <= 0:
            text = messages.personal_quota_text(snapshot.limit, reset)
        else:
            text = personal_left_text(left, asked, reset)
        return Decision(False, QUOTA, text, limit=snapshot.limit, retry_at=reset, fits=fits)
    text = running_text(snapshot.running, snapshot.max_running, asked)
    return Decision(False, CONCURRENCY, text, limit=snapshot.limit, fits=fits)
