"""The dashboard's pages and forms: the servers a member moderates, and for one server its settings,
members (limits, credits, bans), prompt rules and styles (with a prompt tester), and statistics.

Every handler asks `access.check_access` first, on the server side, whatever the page showed: a server
not in the member's staff list is refused whatever id the address carries, a moderator may read but
not change, and a change asks Discord for the member's role again just before it is made. Every form
posts its CSRF token; a change goes through the `/imagine-admin` command's own store call (which writes
its admin_log row), then is posted in the server's mod-log channel with the bot's token
(bot/web/discord_rest.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import available_timezones

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session

from bot.adapters.store import Store
from bot.core import reports
from bot.core.change_sentences import IN_DISCORD, Names, modlog_entry
from bot.core.policy.quotas import MAX_COUNT
from bot.core.policy.rulebook import RuleBook
from bot.core.policy.styles import MAX_STYLE_NAME, MAX_STYLE_TEXT
from bot.web.dashboard.access import (
    Access,
    NoAccess,
    NotAdmin,
    Role,
    check_access,
    staff_servers,
)
from bot.web.dashboard.setting_changes import (
    CHANGES,
    MAX_COOLDOWN,
    MAX_GUILD_CAP,
    MAX_LIMIT,
    MAX_REASON,
    MAX_RUNNING,
    MAX_VIDEO_RATE,
    MIN_VIDEO_RATE,
    FormInput,
    Problem,
)
from bot.web.dashboard.stats_charts import CHART_KEYS, DEFAULT_WINDOW, WINDOWS, StatsBuilder
from bot.web.discord_rest import DiscordRest, DiscordUnavailable
from bot.web.guard import CSRF_FIELD, RateLimiter, csrf_ok
from bot.web.pages import PageError, page_context, page_language

log = logging.getLogger(__name__)

CHANGE_RATE = (30, 60.0)  # changes per member and address per minute
READ_RATE = (60, 60.0)  # statistics pages, CSV downloads and prompt tests (they ask Discord for names)
MAX_PROMPT = 4000
RECENT_CHANGES = 15
FLASH = "dash_flash"
SECTIONS = ("settings", "members", "rules", "stats")
ZONES = sorted(available_timezones())


@dataclass
class Dashboard:
    store: Store
    rest: DiscordRest
    rulebook: RuleBook
    bot_default_quota: int
    change_limit: RateLimiter
    read_limit: RateLimiter


DASHBOARD = web.AppKey("dashboard", Dashboard)


def setup_dashboard(
    app: web.Application,
    store: Store,
    rest: DiscordRest,
    *,
    bot_default_quota: int,
    change_rate: tuple[int, float] = CHANGE_RATE,
    read_rate: tuple[int, float] = READ_RATE,
) -> None:
    app[DASHBOARD] = Dashboard(
        store=store,
        rest=rest,
        rulebook=RuleBook(store.settings),  # the same rule book /imagine checks prompts with
        bot_default_quota=bot_default_quota,
        change_limit=RateLimiter(*change_rate),
        read_limit=RateLimiter(*read_rate),
    )
    r = app.router
    server = r"/dashboard/{guild_id:\d{1,20}}"
    r.add_get("/dashboard", servers_page)
    r.add_get(server, settings_page)
    r.add_get(server + "/members", members_page)
    r.add_get(server + "/rules", rules_page)
    r.add_get(server + "/stats", stats_page)
    r.add_get(server + r"/stats/{chart:[a-z-]{1,40}}.csv", chart_csv)
    r.add_post(server + "/test-prompt", test_prompt)
    r.add_post(server + r"/change/{change:[a-z-]{1,40}}", change)


# -- who is asking ----------------------------------------------------------------------------------------


async def _signed_in(request: web.Request) -> tuple[Session, int]:
    session = await get_session(request)
    uid = session.get("uid")
    if not isinstance(uid, int):
        raise web.HTTPSeeOther("/login")
    return session, uid


async def _access(
    request: web.Request, session: Session, uid: int, *, admin: bool = False, write: bool = False
) -> Access:
    dash = request.app[DASHBOARD]
    if not dash.rest.usable:
        raise PageError(503, "dash_no_token")
    try:
        return await check_access(
            session, dash.rest, uid, int(request.match_info["guild_id"]), admin=admin, write=write
        )
    except NoAccess:
        log.info("dashboard refused: member %s, server %s", uid, request.match_info["guild_id"])
        raise PageError(403, "dash_forbidden") from None
    except NotAdmin:
        log.info("dashboard change refused to moderator %s in server %s", uid, request.match_info["guild_id"])
        raise PageError(403, "dash_admin_only") from None
    except DiscordUnavailable as error:
        log.warning("dashboard: Discord unavailable (%s)", error)
        raise PageError(503, "dash_discord_down") from None


def _limited(limiter: RateLimiter, request: web.Request, uid: int) -> None:
    if not limiter.allow(f"{uid}:{request.remote or 'unknown'}"):
        raise PageError(429, "too_many")


async def _page(
    request: web.Request, session: Session, access: Access, section: str, values: dict[str, Any]
) -> web.Response:
    context = await page_context(request, session)
    flash = session.pop(FLASH, None)
    context |= {
        "guild": access.guild,
        "is_admin": access.admin,
        "role_name": context["tx"]["dash_role_admin" if access.admin else "dash_role_moderator"],
        "section": section,
        "sections": SECTIONS,
        "flash": flash if isinstance(flash, dict) else None,
        "base": f"/dashboard/{access.guild.id}",
    }
    return aiohttp_jinja2.render_template(f"dashboard/{section}.html", request, context | values)


# -- pages ----------------------------------------------------------------------------------------------


async def servers_page(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    session, _ = await _signed_in(request)
    listed: list[dict[str, Any]] = []
    if dash.rest.usable:
        staff = staff_servers(session)
        try:
            found = await asyncio.gather(*(dash.rest.guild(int(gid)) for gid in staff))
        except DiscordUnavailable:
            raise PageError(503, "dash_discord_down") from None
        for (gid, entry), guild in zip(staff.items(), found, strict=True):
            if guild is not None:  # a server where the bot is not: nothing to moderate
                listed.append({"id": gid, "name": guild.name, "admin": entry[:1] == [int(Role.ADMIN)]})
    context = await page_context(request, session)
    values = {"servers": listed, "usable": dash.rest.usable}
    return aiohttp_jinja2.render_template("dashboard/servers.html", request, context | values)


async def settings_page(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    session, uid = await _signed_in(request)
    access = await _access(request, session, uid)
    gid = access.guild.id
    policy = await dash.store.settings.guild_policy(gid)
    context_locale = page_language(request, session)
    channels: list[tuple[int, str]] = []
    try:
        channels = await dash.rest.text_channels(gid)
    except DiscordUnavailable:
        log.warning("dashboard: could not list the channels of server %s", gid)
    names = dict(channels)
    entries = await dash.store.settings.admin_log(gid, RECENT_CHANGES)
    actors = {e.actor_id: await dash.rest.member_name(gid, e.actor_id) for e in entries}
    values = {
        "policy": policy,
        "gallery": await dash.store.gallery.switches(gid),
        "bot_default": dash.bot_default_quota,
        "default_text": reports.limit_text(
            policy.default_quota if policy.default_quota is not None else dash.bot_default_quota,
            context_locale,
        ),
        "channels": channels,
        "modlog_name": names.get(policy.modlog_channel_id or 0),
        "zones": ZONES,
        "recent": [
            {
                "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime(e.created_at)),
                "who": actors.get(e.actor_id, str(e.actor_id)),
                "action": e.action,
                "target": e.target or "",
                "details": ", ".join(f"{k}={v}" for k, v in sorted(e.details.items())),
            }
            for e in entries
        ],
        "bounds": {
            "limit": MAX_LIMIT,
            "cap": MAX_GUILD_CAP,
            "cooldown": MAX_COOLDOWN,
            "running": MAX_RUNNING,
            "rate_low": MIN_VIDEO_RATE,
            "rate_high": MAX_VIDEO_RATE,
        },
    }
    return await _page(request, session, access, "settings", values)


async def members_page(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    session, uid = await _signed_in(request)
    access = await _access(request, session, uid)
    gid = access.guild.id
    role_limits = await dash.store.settings.role_quotas(gid)
    role_counts = await dash.store.settings.role_count_limits(gid)
    bans = await dash.store.settings.bans(gid, time.time())
    banned = [
        {
            "id": b.user_id,
            "name": await dash.rest.member_name(gid, b.user_id),
            "reason": b.reason or "",
            "until": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(b.expires_at)) if b.expires_at else "",
        }
        for b in bans
    ]
    values = {
        "roles": access.guild.listed_roles(),
        "role_limits": [
            (access.guild.roles[r].name if r in access.guild.roles else str(r), limit)
            for r, limit in sorted(role_limits.items())
        ],
        "role_counts": [
            (access.guild.roles[r].name if r in access.guild.roles else str(r), limit)
            for r, limit in sorted(role_counts.items())
        ],
        "bans": banned,
        "bounds": {"limit": MAX_LIMIT, "reason": MAX_REASON, "count": MAX_COUNT},
    }
    return await _page(request, session, access, "members", values)


async def rules_page(request: web.Request, tested: dict[str, Any] | None = None) -> web.Response:
    dash = request.app[DASHBOARD]
    session, uid = await _signed_in(request)
    access = await _access(request, session, uid)
    gid = access.guild.id
    values = {
        "rules": await dash.store.settings.rules(gid),
        "styles": await dash.store.styles.all(gid),
        "tested": tested,
        "max_prompt": MAX_PROMPT,
        "max_style_name": MAX_STYLE_NAME,
        "max_style_text": MAX_STYLE_TEXT,
    }
    return await _page(request, session, access, "rules", values)


def _days(request: web.Request) -> int:
    raw = request.query.get("days", "")
    return int(raw) if raw.isdigit() and int(raw) in WINDOWS else DEFAULT_WINDOW


async def _stats_builder(request: web.Request, session: Session, access: Access) -> StatsBuilder:
    dash = request.app[DASHBOARD]
    policy = await dash.store.settings.guild_policy(access.guild.id)
    locale = page_language(request, session)
    return StatsBuilder(dash.store, dash.rest, access.guild, policy, locale, dash.bot_default_quota)


async def stats_page(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    session, uid = await _signed_in(request)
    access = await _access(request, session, uid)
    _limited(dash.read_limit, request, uid)
    days = _days(request)
    builder = await _stats_builder(request, session, access)
    try:
        charts = await builder.all(time.time(), days)
    except DiscordUnavailable:
        raise PageError(503, "dash_discord_down") from None
    return await _page(
        request, session, access, "stats", {"charts": charts, "days": days, "windows": WINDOWS}
    )


async def chart_csv(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    session, uid = await _signed_in(request)
    access = await _access(request, session, uid)
    key = request.match_info["chart"]
    if key not in CHART_KEYS:
        raise PageError(404, "not_found")
    _limited(dash.read_limit, request, uid)
    days = _days(request)
    builder = await _stats_builder(request, session, access)
    try:
        chart = await builder.chart(key, time.time(), days)
    except DiscordUnavailable:
        raise PageError(503, "dash_discord_down") from None
    filename = f"{key}-{access.guild.id}-{days}d.csv"
    return web.Response(
        text=chart.csv_text(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


# -- forms --------------------------------------------------------------------------------------------


async def test_prompt(request: web.Request) -> web.Response:
    """Check a prompt against the server's rules as /imagine would (moderators too: it changes nothing)."""
    dash = request.app[DASHBOARD]
    session, uid = await _signed_in(request)
    form = await request.post()
    if not csrf_ok(session, form.get(CSRF_FIELD)):
        raise PageError(403, "expired")
    access = await _access(request, session, uid)
    _limited(dash.read_limit, request, uid)
    prompt = str(form.get("prompt", ""))[:MAX_PROMPT]
    found = await dash.rulebook.check(access.guild.id, prompt) if prompt.strip() else None
    tested = {"prompt": prompt, "blocked": found is not None, "rule": found.describe() if found else ""}
    return await rules_page(request, tested)


# Where each change's page is, to go back to after it.
SECTION_OF = {
    "role-limit": "members",
    "member-limit": "members",
    "credits": "members",
    "reset-today": "members",
    "ban": "members",
    "unban": "members",
    "rule-add": "rules",
    "rule-remove": "rules",
    "style-add": "rules",
    "style-remove": "rules",
    "role-count-limit": "members",
    "member-count-limit": "members",
}


async def change(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    session, uid = await _signed_in(request)
    form = await request.post()
    if not csrf_ok(session, form.get(CSRF_FIELD)):
        log.warning("dashboard change without a valid CSRF token refused (member %s)", uid)
        raise PageError(403, "expired")
    name = request.match_info["change"]
    make = CHANGES.get(name)
    if make is None:
        raise PageError(404, "not_found")
    access = await _access(request, session, uid, admin=True, write=True)
    _limited(dash.change_limit, request, uid)
    gid = access.guild.id
    lang = page_language(request, session)
    f = FormInput(dash.store, dash.rest, access.guild, uid, time.time(), dash.bot_default_quota, form)
    section = SECTION_OF.get(name, "settings")
    target = f"/dashboard/{gid}" + ("" if section == "settings" else f"/{section}")
    try:
        done = await make(f)
    except Problem as problem:
        session[FLASH] = {"ok": False, "text": problem.text.render(lang)}
        raise web.HTTPSeeOther(target) from None
    except DiscordUnavailable:
        raise PageError(503, "dash_discord_down") from None
    # The page shows the sentence plain; Discord shows its Markdown.
    shown = done.describe(Names(mentions=False, known=f.known), lang).replace("`", "").replace("**", "")
    session[FLASH] = {"ok": True, "text": shown}
    log.info("dashboard: member %s changed %s in server %s", uid, name, gid)
    await _post_modlog(dash, access, uid, done.modlog_channel, done.describe(IN_DISCORD, access.guild.locale))
    raise web.HTTPSeeOther(target)


async def _post_modlog(dash: Dashboard, access: Access, actor: int, channel: int | None, text: str) -> None:
    """The change in the server's mod-log channel, as an entry of its own (the admin_log row is
    already written by the store call). A mod-log that cannot be posted to costs only the post."""
    if channel is None:
        channel = (await dash.store.settings.guild_policy(access.guild.id)).modlog_channel_id
    if channel is None:
        return
    entry = modlog_entry(access.guild.locale, actor, text, on_dashboard=True)
    await dash.rest.post(channel, entry[:2000])
