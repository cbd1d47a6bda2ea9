"""The gallery's pages: sign-in and sign-out, and My images (with its infinite-scroll pages). Every
handler reads the member from the encrypted session and asks the store for that member's images only:
ids in the address never reach anyone else's. A server's gallery is in server_pages.py, an image's page
and its pictures in image_pages.py."""

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
from bot.adapters.thumbnails import ThumbnailStore
from bot.core.image_contract import ASPECT_RATIOS
from bot.core.prompt_words import query_terms
from bot.web import membership
from bot.web.dashboard.access import STAFF_KEY, staff_at_sign_in
from bot.web.discord_rest import DiscordRest
from bot.web.guard import CSRF_FIELD, RateLimiter, csrf_ok, csrf_token
from bot.web.oauth import DiscordOAuth, OAuthError, new_state
from bot.web.page_texts import page_texts, reader_language
from bot.web.pictures import Pictures

log = logging.getLogger(__name__)

PAGE_SIZE = 30
DISCORD_MESSAGE_LINK = "https://discord.com/channels/{place}/{channel}/{message}"
MAX_QUERY_CHARS = 200


@dataclass
class WebContext:
    """What every handler shares: the store, Discord's sign-in, the bot's REST calls (None without a
    bot token), the pictures and the limits."""

    store: Store
    oauth: DiscordOAuth
    media: aiohttp.ClientSession
    max_media_bytes: int
    login_limit: RateLimiter
    search_limit: RateLimiter
    thumbnails: ThumbnailStore
    discord: DiscordRest | None
    pictures: Pictures

    def now(self) -> float:
        return time.time()


CONTEXT = web.AppKey("web_context", WebContext)


class PageError(Exception):
    """A friendly error page: a status and the key of its title and text in PAGE_TEXTS."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status = status
        self.key = key


def address(request: web.Request) -> str:
    return request.remote or "unknown"


def page_language(request: web.Request, session: Session) -> str:
    """The reader's language: their browser's, else their Discord locale's."""
    return reader_language(request.headers.get("Accept-Language", ""), session.get("locale"))


async def page_context(request: web.Request, session: Session | None = None) -> dict[str, Any]:
    session = session or await get_session(request)
    language = page_language(request, session)
    return {
        "lang": language,
        "tx": page_texts(language),
        "csrf_field": CSRF_FIELD,
        "csrf": csrf_token(session),
        "member": session.get("name") if session.get("uid") else None,
        "galleries": membership.listed(session) if session.get("uid") else [],
    }


def render_error(request: web.Request, context: dict[str, Any], status: int, key: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "error.html", request, context | {"title_key": f"{key}_title", "text_key": key}, status=status
    )


async def signed_in(request: web.Request) -> tuple[Session, int]:
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
    if not ctx.login_limit.allow(address(request)):
        raise PageError(429, "too_many")
    session = await get_session(request)
    state = new_state()
    session["oauth_state"] = state
    raise web.HTTPSeeOther(ctx.oauth.authorize_url(state))


async def oauth_callback(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if not ctx.login_limit.allow(address(request)):
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
    open_galleries = await ctx.store.gallery.open_galleries(sorted(user.guilds))
    # A new session (and cookie) at sign-in: a session fixed by someone else before is worthless.
    session = await new_session(request)
    session["uid"] = user.id
    session["name"] = user.name[:100]
    session["locale"] = user.locale
    # Names of the member's servers that their images come from (kept small: it lives in the cookie).
    session["guilds"] = {str(g): user.guilds[g][:100] for g in facets.servers if g in user.guilds}
    # The servers whose dashboard they may open (bot/web/dashboard/access.py).
    session[STAFF_KEY] = staff_at_sign_in(user.permissions, time.time())
    membership.remember(session, {g: (user.guilds[g], user.permissions.get(g, 0)) for g in open_galleries})
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


def read_filter(query: Any) -> tuple[GalleryFilter, dict[str, str]]:
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


def card(image: GalleryImage, thumbnails: ThumbnailStore) -> dict[str, Any]:
    return {
        "id": image.id,
        "prompt": image.prompt,
        "when": datetime.fromtimestamp(image.created_at, UTC),
        "aspect_class": "ar-" + (image.aspect_ratio or "1:1").replace(":", "x"),
        "private": image.private,
        "video": image.is_video,
        "poster": has_poster(image, thumbnails),
    }


def poster_of(image: GalleryImage) -> tuple[int, int] | None:
    """A video's poster: the thumbnail of the image it was made from (job, 0-based index)."""
    if not image.is_video or image.source_job_id is None:
        return None
    return image.source_job_id, max((image.source_image_index or 1) - 1, 0)


def has_poster(image: GalleryImage, thumbnails: ThumbnailStore) -> bool:
    source = poster_of(image)
    return source is not None and thumbnails.path(*source).exists()


async def my_images(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session, uid = await signed_in(request)
    flt, kept = read_filter(request.query)
    if "q" in kept and not ctx.search_limit.allow(f"{uid}:{address(request)}"):
        raise PageError(429, "too_many")
    before = request.query.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) <= 19 else None
    images = await ctx.store.gallery.page(uid, flt, before_id=before_id, limit=PAGE_SIZE + 1)
    more = len(images) > PAGE_SIZE
    images = images[:PAGE_SIZE]
    next_url = "/me?" + urlencode(kept | {"before": str(images[-1].id)}) if more and images else None
    values: dict[str, Any] = {
        "cards": [card(image, ctx.thumbnails) for image in images],
        "next_url": next_url,
        "filtered": bool(kept),
        "action": "/me",
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
