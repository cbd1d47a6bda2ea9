"""A server's statistics as the dashboard's charts: images per day (in the server's time zone), by
member and by role, refusals and failures by reason, time to image, and today's use against each
member's limit (the same policy and store call as `/usage`). The numbers come from store.stats; names
and roles from Discord (cached a few minutes)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from bot.adapters.store import Store
from bot.adapters.store.stats_repo import SLOT_SECONDS
from bot.core.i18n import t
from bot.core.policy.quotas import GuildPolicy, Member, day_bounds
from bot.core.texts import from_stored, render
from bot.web.dashboard.chart_svg import Chart
from bot.web.discord_rest import MANAGE_GUILD, DiscordRest, GuildInfo, MemberInfo

T = TypeVar("T")

WINDOWS = (7, 30, 90)  # days a page may show
DEFAULT_WINDOW = 30
TOP_MEMBERS = 10
ROLE_SAMPLE = 50  # images by role counts the roles of the most active members, at most this many
QUOTA_MEMBERS = 15
FAILURE_REASONS = 10
DURATION_SAMPLE = 5000
LOOKUPS_AT_ONCE = 5
# Time to image, in seconds: the buckets' lower bounds.
DURATION_BUCKETS = (0, 10, 20, 30, 60, 120, 300)
CHART_KEYS = (
    "images-per-day",
    "images-by-member",
    "images-by-role",
    "refusals",
    "failures",
    "time-to-image",
    "quota-today",
)


@dataclass(frozen=True)
class Window:
    days: int
    since: float
    until: float
    dates: list[date]


def window(now: float, timezone: str, days: int) -> Window:
    """The last `days` days of the server, today included, from local midnight to now."""
    start_today, _ = day_bounds(now, timezone)
    zone = ZoneInfo(timezone)
    today = datetime.fromtimestamp(start_today, zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=zone).timestamp()
    return Window(days, since, now + 1, [first + timedelta(days=n) for n in range(days)])


def _bucket_label(n: int, locale: str) -> str:
    low = DURATION_BUCKETS[n]
    if n + 1 == len(DURATION_BUCKETS):
        return t(locale, "{low} s or more", low=low)
    return t(locale, "{low} to {high} s", low=low, high=DURATION_BUCKETS[n + 1])


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _gather_bounded(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Discord look-ups a few at a time: the bot's token shares one rate limit with the bot."""
    gate = asyncio.Semaphore(LOOKUPS_AT_ONCE)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(call) for call in calls)))


class StatsBuilder:
    def __init__(
        self,
        store: Store,
        rest: DiscordRest,
        guild: GuildInfo,
        policy: GuildPolicy,
        locale: str,
        bot_default: int,
    ) -> None:
        self.store = store
        self.rest = rest
        self.guild = guild
        self.policy = policy
        self.locale = locale
        self.bot_default = bot_default

    async def _members(self, user_ids: list[int]) -> dict[int, MemberInfo | None]:
        found = await _gather_bounded(
            [functools.partial(self.rest.member_cached, self.guild.id, uid) for uid in user_ids]
        )
        return dict(zip(user_ids, found, strict=True))

    async def _name(self, user_id: int, member: MemberInfo | None) -> str:
        return member.name if member is not None else await self.rest.member_name(self.guild.id, user_id)

    async def chart(self, key: str, now: float, days: int) -> Chart:
        span = window(now, self.policy.timezone, days)
        build = {
            "images-per-day": self.images_per_day,
            "images-by-member": self.images_by_member,
            "images-by-role": self.images_by_role,
            "refusals": self.refusals,
            "failures": self.failures,
            "time-to-image": self.time_to_image,
        }.get(key)
        if build is not None:
            return await build(span)
        return await self.quota_today(now)

    async def all(self, now: float, days: int) -> list[Chart]:
        return [await self.chart(key, now, days) for key in CHART_KEYS]

    async def images_per_day(self, span: Window) -> Chart:
        zone = ZoneInfo(self.policy.timezone)
        per_day = dict.fromkeys(span.dates, 0)
        for slot, count in await self.store.stats.completed_by_slot(self.guild.id, span.since, span.until):
            day = datetime.fromtimestamp(slot * SLOT_SECONDS, zone).date()
            if day in per_day:
                per_day[day] += count
        labels = [day.isoformat() for day in span.dates]
        values = [float(per_day[day]) for day in span.dates]
        return Chart(
            "images-per-day",
            t(self.locale, "Images per day ({zone})", zone=self.policy.timezone),
            ["day", "images"],
            [(label, int(v)) for label, v in zip(labels, values, strict=True)],
            kind="columns",
            labels=labels,
            values=values,
            note=t(self.locale, "{count} images in {days} days", count=int(sum(values)), days=span.days),
            empty_text=t(self.locale, "No images in these days."),
        )

    async def images_by_member(self, span: Window) -> Chart:
        top = await self.store.stats.completed_by_member(self.guild.id, span.since, span.until, TOP_MEMBERS)
        members = await self._members([uid for uid, _ in top])
        names = [await self._name(uid, members[uid]) for uid, _ in top]
        return Chart(
            "images-by-member",
            t(self.locale, "Images by member (the {count} most active)", count=TOP_MEMBERS),
            ["member_id", "member", "images"],
            [(str(uid), name, count) for (uid, count), name in zip(top, names, strict=True)],
            labels=names,
            values=[float(count) for _, count in top],
            empty_text=t(self.locale, "No images in these days."),
        )

    async def images_by_role(self, span: Window) -> Chart:
        top = await self.store.stats.completed_by_member(self.guild.id, span.since, span.until, ROLE_SAMPLE)
        members = await self._members([uid for uid, _ in top])
        per_role: dict[int, int] = {}
        no_role = 0
        for uid, count in top:
            member = members[uid]
            roles = [
                r for r in (member.role_ids if member else ()) if r in self.guild.roles and r != self.guild.id
            ]
            for role in roles:
                per_role[role] = per_role.get(role, 0) + count
            if not roles:
                no_role += count
        ranked = sorted(per_role.items(), key=lambda item: (-item[1], item[0]))
        rows: list[tuple[str, str, int]] = [(str(r), self.guild.roles[r].name, n) for r, n in ranked]
        if no_role:
            rows.append(("", t(self.locale, "(no role)"), no_role))
        note = ""
        if len(top) == ROLE_SAMPLE:
            note = t(self.locale, "Counted over the {count} most active members.", count=ROLE_SAMPLE)
        return Chart(
            "images-by-role",
            t(self.locale, "Images by role (a member with several roles counts in each)"),
            ["role_id", "role", "images"],
            rows,
            labels=["@" + name if role else name for role, name, _ in rows],
            values=[float(n) for _, _, n in rows],
            note=note,
            empty_text=t(self.locale, "No images in these days."),
        )

    async def refusals(self, span: Window) -> Chart:
        found = await self.store.stats.refusals_by_reason(self.guild.id, span.since, span.until)
        return Chart(
            "refusals",
            t(self.locale, "Refused requests by reason"),
            ["reason", "requests"],
            list(found),
            labels=[reason for reason, _ in found],
            values=[float(n) for _, n in found],
            empty_text=t(self.locale, "No refusals in these days."),
        )

    async def failures(self, span: Window) -> Chart:
        found = await self.store.stats.failures_by_error(
            self.guild.id, span.since, span.until, FAILURE_REASONS
        )
        shown = [(render(self.locale, from_stored(raw)) if raw else "?", n) for raw, n in found]
        english = [(render("en", from_stored(raw)) if raw else "", n) for raw, n in found]
        return Chart(
            "failures",
            t(self.locale, "Failed images by reason"),
            ["reason", "images"],
            english,
            labels=[text for text, _ in shown],
            values=[float(n) for _, n in shown],
            empty_text=t(self.locale, "No failures in these days."),
        )

    async def time_to_image(self, span: Window) -> Chart:
        seconds = await self.store.stats.durations(self.guild.id, span.since, span.until, DURATION_SAMPLE)
        counts = [0] * len(DURATION_BUCKETS)
        for value in seconds:
            slot = max(n for n, low in enumerate(DURATION_BUCKETS) if value >= low or n == 0)
            counts[slot] += 1
        labels = [_bucket_label(n, self.locale) for n in range(len(DURATION_BUCKETS))]
        english = [_bucket_label(n, "en") for n in range(len(DURATION_BUCKETS))]
        note = ""
        if seconds:
            note = t(
                self.locale,
                "Half of the images took {median} s or less; 95 in 100 took {p95} s or less.",
                median=f"{_percentile(seconds, 0.5):.1f}",
                p95=f"{_percentile(seconds, 0.95):.1f}",
            )
        return Chart(
            "time-to-image",
            t(self.locale, "Time from request to image"),
            ["seconds", "images"],
            list(zip(english, counts, strict=True)),
            labels=labels,
            values=[float(n) for n in counts],
            note=note,
            empty_text=t(self.locale, "No images in these days."),
        )

    async def quota_today(self, now: float) -> Chart:
        start, _ = day_bounds(now, self.policy.timezone)
        used = await self.store.stats.counted_by_member(self.guild.id, start, QUOTA_MEMBERS)
        members = await self._members([uid for uid, _ in used])
        rows: list[tuple[str, str, int, int | str]] = []
        if self.policy.daily_cap is not None:
            total = await self.store.stats.counted_total(self.guild.id, start)
            rows.append(("", t(self.locale, "The whole server"), total, self.policy.daily_cap))
        for uid, _ in used:
            info = members[uid]
            member = Member(
                self.guild.id,
                uid,
                role_ids=info.role_ids if info else (),
                is_owner=uid == self.guild.owner_id,
                can_manage_guild=bool(info and self.guild.permissions_of(info) & MANAGE_GUILD),
            )
            # Today's use and limit as /usage shows them to the member: the same policy and store call.
            summary = await self.store.usage.summary(member, now, self.bot_default)
            limit: int | str = summary.limit if summary.limit is not None else ""
            rows.append((str(uid), await self._name(uid, info), summary.used_today, limit))
        return Chart(
            "quota-today",
            t(self.locale, "Today's use against the daily limits"),
            ["member_id", "member", "used_today", "daily_limit"],
            rows,
            labels=[name for _, name, _, _ in rows],
            values=[float(n) for _, _, n, _ in rows],
            limits=[float(limit) if isinstance(limit, int) else None for _, _, _, limit in rows],
            note=t(self.locale, "An empty limit means no daily limit."),
            empty_text=t(self.locale, "Nobody has used the bot today."),
        )
