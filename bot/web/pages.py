"""The gallery's pages: sign-in and sign-out, My images (with its infinite-scroll pages), an image's
page, and the image bytes behind them. Every handler reads the member from the encrypted session and
asks the store for that member's images only: ids in the address never reach anyone else's."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from bot.adapters.store import GalleryFilter, GalleryImage, Store
from bot.core.image_contract import ASPECT_RATIOS
from bot.core.prompt_words import query_terms
from bot.web.dashboard.access import STAFF_KEY, staff_at_sign_in
from bot.web.guard import CSRF_FIELD, RateLimiter, csrf_ok, csrf_token
from bot.web.oauth import DiscordOAuth, OAuthError, new_state
from bot.web.page_texts import page_texts, reader_language

log = logging.getLogger(__name__)

PAGE_SIZE = 30
DISCORD_MESSAGE_LINK = "https://discord.com/channels/{place}/{channel}/{message}"
MAX_QUERY_CHARS = 200


@dataclass
class WebContext:
    """What every handler shares: the store, Discord's sign-in, the media fetcher and the limits."""

    store: Store
    oauth: DiscordOAuth
    media: aiohttp.ClientSession
    max_media_bytes: int
    login_limit: RateLimiter
    search_limit: RateLimiter


CONTEXT = web.AppKey("web_context", WebContext)


class PageError(Exception):
    """A friendly error page: a status and the key of its title and text in PAGE_TEXTS."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status = status
        self.key = key


def _address(request: web.Request) -> str:
    return request.remote or "unknown"


async def page_context(request: web.Request, session: Session | None = None) -> dict[str, Any]:
    session = session or await get_session(request)
    language = reader_language(request.headers.get("Accept-Language", ""), session.get("locale"))
    return {
        "lang": language,
        "tx": page_texts(language),
        "csrf_field": CSRF_FIELD,
        "csrf": csrf_token(session),
        "member": session.get("name") if session.get("uid") else None,
    }


def render_error(request: web.Request, context: dict[str, Any], status: int, key: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "error.html", request, context | {"title_key": f"{key}_title", "text_key": key}, status=status
    )


async def _member(request: web.Request) -> tuple[Session, int]:
    """The signed-in member, or a redirect to the sign-in page."""
    session = await get_session(request)
    uid = session.get("uid")
    if not isinstance(uid, int):
        raise web.HTTPSeeOther("/login")
    return session, uid


# -- signing in and out ------------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    session = await get_session(request)
    raise web.HTTPSeeOther("/me" if session.get("uid") else "/login")


async def login_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("login.html", request, await page_context(request))


async def login_start(request: web.Request) -> web.Response:
    """Off to Discord's authorize page, with a fresh `state` this browser must bring back."""
    ctx = request.app[CONTEXT]
    if not ctx.login_limit.allow(_address(request)):
        raise PageError(429, "too_many")
    session = await get_session(request)
    state = new_state()
    session["oauth_state"] = state
    raise web.HTTPSeeOther(ctx.oauth.authorize_url(state))


async def oauth_callback(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if not ctx.login_limit.allow(_address(request)):
        raise PageError(429, "too_many")
    session = await get_session(request)
    expected = session.pop("oauth_state", None)
    code = request.query.get("code", "")
    sent = request.query.get("state", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), sent.encode()):
        log.warning("web sign-in refused: the state does not match (a forged or replayed callback)")
        raise PageError(400, "sign_in_failed")
    if not code:
        raise PageError(400, "sign_in_failed")  # the member pressed Cancel on Discord's page
    try:
        user = await ctx.oauth.sign_in(code)
    except OAuthError as error:
        log.warning("web sign-in failed: %s", error)
        raise PageError(502, "sign_in_failed") from None
    facets = await ctx.store.gallery.facets(user.id)
    # A new session (and cookie) at sign-in: a session fixed by someone else before is worthless.
    session = await new_session(request)
    session["uid"] = user.id
    session["name"] = user.name[:100]
    session["locale"] = user.locale
    # Names of the member's servers that their images come from (kept small: it lives in the cookie).
    session["guilds"] = {str(g): user.guilds[g][:100] for g in facets.servers if g in user.guilds}
    # The servers whose dashboard they may open (bot/web/dashboard/access.py).
    session[STAFF_KEY] = staff_at_sign_in(user.permissions, time.time())
    csrf_token(session)
    log.info("web sign-in: member %s", user.id)
    raise web.HTTPSeeOther("/me")


async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    form = await request.post()
    if not csrf_ok(session, form.get(CSRF_FIELD)):
        raise PageError(403, "expired")
    session.invalidate()
    raise web.HTTPSeeOther("/login")


# -- my images ---------------------------------------------------------------------------------------


def _day(raw: str) -> float | None:
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _filter(query: Any) -> tuple[GalleryFilter, dict[str, str]]:
    """The filter an address asks for, and the parameters it understood (to build the next page's)."""
    kept: dict[str, str] = {}
    server: int | None = None
    personal = False
    raw_server = query.get("server", "")
    if raw_server == "personal":
        personal, kept["server"] = True, raw_server
    elif raw_server.isdigit() and len(raw_server) <= 21:
        server, kept["server"] = int(raw_server), raw_server
    since = _day(query.get("from", ""))
    if since is not None:
        kept["from"] = query["from"]
    until = _day(query.get("to", ""))
    if until is not None:
        kept["to"] = query["to"]
        until += 86_400  # the whole day
    aspect = query.get("aspect", "")
    aspect = aspect if aspect in ASPECT_RATIOS else ""
    if aspect:
        kept["aspect"] = aspect
    style = query.get("style", "").strip()[:100]
    if style:
        kept["style"] = style
    words = query.get("q", "").strip()[:MAX_QUERY_CHARS]
    if words:
        kept["q"] = words
    flt = GalleryFilter(
        server=server,
        personal=personal,
        since=since,
        until=until,
        aspect_ratio=aspect or None,
        style=style or None,
        terms=tuple(query_terms(words)),
    )
    return flt, kept


def _card(image: GalleryImage) -> dict[str, Any]:
    return {
        "id": image.id,
        "prompt": image.prompt,
        "when": datetime.fromtimestamp(image.created_at, UTC),
        "aspect_class": "ar-" + (image.aspect_ratio or "1:1").replace(":", "x"),
        "private": image.private,
    }


async def my_images(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session, uid = await _member(request)
    flt, kept = _filter(request.query)
    if "q" in kept and not ctx.search_limit.allow(f"{uid}:{_address(request)}"):
        raise PageError(429, "too_many")
    before = request.query.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) <= 19 else None
    images = await ctx.store.gallery.page(uid, flt, before_id=before_id, limit=PAGE_SIZE + 1)
    more = len(images) > PAGE_SIZE
    images = images[:PAGE_SIZE]
    next_url = "/me?" + urlencode(kept | {"before": str(images[-1].id)}) if more and images else None
    values: dict[str, Any] = {
        "cards": [_card(image) for image in images],
        "next_url": next_url,
        "filtered": bool(kept),
    }
    if request.query.get("fragment") == "1":  # the next page for the infinite scroll
        return aiohttp_jinja2.render_template(
            "cards.html", request, await page_context(request, session) | values
        )
    facets = await ctx.store.gallery.facets(uid)
    names: dict[str, str] = session.get("guilds") or {}
    servers = [(str(g), names.get(str(g), str(g))) for g in facets.servers]
    values |= {
        "kept": kept,
        "servers": servers,
        "has_personal": facets.personal,
        "styles": facets.styles,
        "aspect_ratios": ASPECT_RATIOS,
    }
    return aiohttp_jinja2.render_template(
        "gallery.html", request, await page_context(request, session) | values
    )


# -- one image -----------------------------------------------------------------------------------------


def copy_command(image: GalleryImage) -> str:
    """The /imagine that makes this image again (its references are not part of it)."""
    parts = [f"/imagine prompt:{image.prompt}"]
    if image.aspect_ratio:
        parts.append(f"aspect_ratio:{image.aspect_ratio}")
    if image.style:
        parts.append(f"style:{image.style}")
    return " ".join(parts)


def message_link(image: GalleryImage) -> str | None:
    if image.message_id is None or image.message_channel_id is None or image.deliver_to == "ephemeral":
        return None
    place = image.guild_id or image.place_guild_id or "@me"
    return DISCORD_MESSAGE_LINK.format(
        place=place, channel=image.message_channel_id, message=image.message_id
    )


async def _own_image(request: web.Request) -> tuple[Session, GalleryImage]:
    ctx = request.app[CONTEXT]
    session, uid = await _member(request)
    raw = request.match_info["image_id"]
    image = await ctx.store.gallery.image(uid, int(raw)) if raw.isdigit() and len(raw) <= 19 else None
    if image is None:
        raise PageError(404, "not_found")
    return session, image


async def image_page(request: web.Request) -> web.Response:
    session, image = await _own_image(request)
    context = await page_context(request, session)
    names: dict[str, str] = session.get("guilds") or {}
    if image.guild_id is not None:
        where = names.get(str(image.guild_id), str(image.guild_id))
    else:
        where = context["tx"]["personal_use"]
    values = {
        "image": image,
        "when": datetime.fromtimestamp(image.created_at, UTC),
        "where": where,
        "command": copy_command(image),
        "link": message_link(image),
        "pictures": list(range(len(image.result_urls))),
    }
    return aiohttp_jinja2.render_template("image.html", request, context | values)


async def image_bytes(request: web.Request) -> web.StreamResponse:
    """The picture itself, fetched from where the image service left it, for its maker only (the
    thumbnail store will serve this once it exists)."""
    ctx = request.app[CONTEXT]
    _, image = await _own_image(request)
    index = request.match_info["index"]
    if not index.isdigit() or int(index) >= len(image.result_urls):
        raise PageError(404, "not_found")
    started = time.monotonic()
    try:
        async with ctx.media.get(image.result_urls[int(index)], allow_redirects=False) as upstream:
            kind = upstream.headers.get("Content-Type", "")
            if upstream.status != 200 or not kind.startswith("image/"):
                raise PageError(404, "not_found")
            body = await upstream.content.read(ctx.max_media_bytes + 1)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        log.info("gallery image %s could not be fetched", image.id)
        raise PageError(404, "not_found") from None
    if len(body) > ctx.max_media_bytes:
        raise PageError(404, "not_found")
    log.debug("gallery image %s fetched in %.3f s", image.id, time.monotonic() - started)
    return web.Response(
        body=body,
        content_type=kind.split(";")[0],
        # Cached by this browser only, and only for the same signed-in member (the cookie changes at
        # every sign-in and sign-out): the next member at a shared computer gets it from the server.
        headers={"Cache-Control": "private, max-age=3600", "Vary": "Cookie"},
    )
