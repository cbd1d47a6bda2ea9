"""The web gallery's server: the aiohttp application (sessions, templates, static files, routes) and
its lifecycle, inside the bot's process (WEB_PORT) or alone (`python -m bot web`, PostgreSQL only)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.adapters.safe_fetch import open_session
from bot.adapters.store import Store, open_store
from bot.adapters.thumbnails import ThumbnailStore
from bot.ops import wiring
from bot.ops.config import Settings
from bot.ops.preflight import DISCORD_API
from bot.web import image_pages, pages, server_pages
from bot.web.dashboard.dashboard_pages import setup_dashboard
from bot.web.discord_rest import DiscordRest
from bot.web.guard import RateLimiter, security_headers
from bot.web.oauth import CALLBACK_PATH, DiscordOAuth
from bot.web.pictures import Pictures

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "imagine_session"
SESSION_DAYS = 7
LOGIN_RATE = (10, 60.0)  # sign-ins per address per minute
SEARCH_RATE = (30, 60.0)  # searches per member and address per minute
BACKFILL_PAUSE = 0.05  # between batches of old images' prompt words: the bot keeps its database time

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def friendly_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as a page in the reader's language, never a traceback."""
    try:
        return await handler(request)
    except pages.PageError as error:
        return pages.render_error(request, await pages.page_context(request), error.status, error.key)
    except web.HTTPNotFound:
        return pages.render_error(request, await pages.page_context(request), 404, "not_found")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("web page %s failed", request.path)
        return pages.render_error(request, await pages.page_context(request), 500, "error")


def build_app(
    settings: Settings,
    store: Store,
    http: aiohttp.ClientSession,
    media: aiohttp.ClientSession,
    *,
    login_rate: tuple[int, float] = LOGIN_RATE,
    search_rate: tuple[int, float] = SEARCH_RATE,
) -> web.Application:
    assert settings.web_session_secret and settings.discord_client_secret and settings.discord_client_id
    secure = settings.web_url.startswith("https://")
    # Any length of secret becomes the 32-byte key Fernet wants; every web process derives the same one.
    key = hashlib.sha256(settings.web_session_secret.reveal().encode()).digest()
    storage = EncryptedCookieStorage(
        key,
        cookie_name=SESSION_COOKIE,
        max_age=SESSION_DAYS * 86_400,
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    setup_sessions(app, storage)
    app.middlewares.append(friendly_errors)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    thumbnails = ThumbnailStore(settings.thumbnail_path)
    api_base = settings.discord_api_base or DISCORD_API
    # The bot's token, for the REST calls of the gallery and the dashboard (discord_rest.py); without it
    # (a web process given no DISCORD_TOKEN) memberships are trusted as sign-in found them, pictures
    # come from the service and the dashboard says it needs the token.
    rest = DiscordRest(
        http,
        api_base,
        settings.discord_token.reveal() if settings.discord_token else None,
        settings.max_result_bytes,
    )
    discord = rest if rest.usable else None
    app[pages.CONTEXT] = pages.WebContext(
        store=store,
        oauth=DiscordOAuth(
            http,
            api_base=api_base,
            authorize_url=settings.discord_authorize_url,
            client_id=settings.discord_client_id,
            client_secret=settings.discord_client_secret.reveal(),
            redirect_uri=settings.web_url + CALLBACK_PATH,
        ),
        media=media,
        max_media_bytes=settings.max_result_bytes,
        login_limit=RateLimiter(*login_rate),
        search_limit=RateLimiter(*search_rate),
        thumbnails=thumbnails,
        discord=discord,
        pictures=Pictures(thumbnails, discord, media, settings.max_result_bytes),
    )
    r = app.router
    r.add_get("/", pages.home)
    r.add_get("/login", pages.login_page)
    r.add_get("/login/discord", pages.login_start)
    r.add_get(CALLBACK_PATH, pages.oauth_callback)
    r.add_post("/logout", pages.logout)
    r.add_get("/me", pages.my_images)
    r.add_get("/servers/{guild_id}", server_pages.server_gallery)
    r.add_get("/images/{image_id}", image_pages.image_page)
    r.add_get("/images/{image_id}/picture/{index}", image_pages.image_bytes)
    r.add_get("/images/{image_id}/thumb/{index}", image_pages.thumbnail)
    r.add_post("/images/{image_id}/delete", image_pages.delete_image)
    r.add_post("/images/{image_id}/remove", image_pages.remove_from_gallery)
    r.add_static("/static/", HERE / "static", append_version=True)
    # The moderators' dashboard (bot/web/dashboard/): Discord's API with the bot's token, for roles.
    setup_dashboard(app, store, rest, bot_default_quota=settings.default_daily_quota)
    return app


class WebServer:
    """The gallery on WEB_HOST:WEB_PORT, sharing the store of the process it runs in."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        login_rate: tuple[int, float] = LOGIN_RATE,
        search_rate: tuple[int, float] = SEARCH_RATE,
    ) -> None:
        self.settings = settings
        self.store = store
        self._rates = {"login_rate": login_rate, "search_rate": search_rate}
        self._runner: web.AppRunner | None = None
        self._sessions: list[aiohttp.ClientSession] = []
        self._backfill: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        s = self.settings
        assert s.web_port is not None
        # Discord's API (the operator's DISCORD_API_BASE) on a plain session; the pictures through the
        # bot's fetch policy: the image API's origin and RESULT_HOSTS, else public addresses only.
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=s.request_timeout))
        media = open_session(wiring.fetch_policy(s), total_timeout=s.request_timeout)
        self._sessions = [http, media]
        self._runner = web.AppRunner(
            build_app(s, self.store, http, media, **self._rates), handle_signals=False, access_log=None
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, s.web_host, s.web_port).start()
        self.port = self._runner.addresses[0][1]
        self._backfill = asyncio.create_task(self._index_old_images())
        log.info("web gallery listening on %s:%s (%s)", s.web_host, self.port, s.web_url)

    async def _index_old_images(self) -> None:
        """Prompt words of images posted before the gallery existed, a batch at a time."""
        try:
            while not await self.store.gallery.backfill_prompt_words():  # noqa: ASYNC110 - a pause, not a wait
                await asyncio.sleep(BACKFILL_PAUSE)
        except Exception:  # the gallery works without them; the next start tries again
            log.warning("could not index the prompt words of older images", exc_info=True)

    async def stop(self) -> None:
        if self._backfill is not None:
            self._backfill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._backfill
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for session in self._sessions:
            await session.close()
        self._sessions = []


async def run_web(settings: Settings) -> int:
    """`python -m bot web`: the gallery alone, for deployments on PostgreSQL that scale it apart."""
    store = await open_store(settings)
    server = WebServer(settings, store)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    try:
        await server.start()
        await stopped.wait()
    finally:
        await server.stop()
        await store.close()
    return 0
