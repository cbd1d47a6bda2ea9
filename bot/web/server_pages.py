"""A server's gallery: the public images posted in one server, for its members, once its server admins
turned it on (`/imagine-admin gallery on`). The gallery being on and the member belonging to the server
are checked on every page (membership.py); either missing is "Not found"."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from bot.core.image_contract import ASPECT_RATIOS
from bot.web import membership
from bot.web.pages import CONTEXT, PAGE_SIZE, PageError, address, card, page_context, read_filter, signed_in


async def server_gallery(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session, uid = await signed_in(request)
    raw = request.match_info["guild_id"]
    if not raw.isdigit() or len(raw) > 20:
        raise PageError(404, "not_found")
    guild_id = int(raw)
    switches = await ctx.store.gallery.switches(guild_id)
    access = await membership.server_access(session, uid, guild_id, ctx.discord) if switches.enabled else None
    if access is None:
        if ctx.discord is None and str(guild_id) in (session.get(membership.GALLERIES) or {}):
            # No bot token to ask Discord with: a fresh sign-in (instant for a member who authorised
            # the app before) says again which servers they are in.
            raise web.HTTPSeeOther("/login/discord")
        raise PageError(404, "not_found")
    flt, kept = read_filter(request.query)
    kept.pop("server", None)
    if "q" in kept and not ctx.search_limit.allow(f"{uid}:{address(request)}"):
        raise PageError(429, "too_many")
    before = request.query.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) <= 19 else None
    images = await ctx.store.gallery.server_page(
        guild_id,
        dataclasses.replace(flt, server=None, personal=False),
        hide_banned=switches.hide_banned,
        now=ctx.now(),
        before_id=before_id,
        limit=PAGE_SIZE + 1,
    )
    more = len(images) > PAGE_SIZE
    images = images[:PAGE_SIZE]
    path = f"/servers/{guild_id}"
    next_url = f"{path}?" + urlencode(kept | {"before": str(images[-1].id)}) if more and images else None
    values: dict[str, Any] = {
        "cards": [card(image, ctx.thumbnails) for image in images],
        "next_url": next_url,
        "filtered": bool(kept),
        "action": path,
    }
    context = await page_context(request, session)
    if request.query.get("fragment") == "1":
        return aiohttp_jinja2.render_template("cards.html", request, context | values)
    values |= {
        "kept": kept,
        "heading": context["tx"]["server_gallery"].format(name=access.name),
        "server_page": True,
        "styles": [style.name for style in await ctx.store.styles.all(guild_id)],
        "aspect_ratios": ASPECT_RATIOS,
    }
    return aiohttp_jinja2.render_template("gallery.html", request, context | values)
