"""The web gallery's test world: the fake Discord (with its OAuth2), a picture server standing in for
the image service, a SQLite store with posted images and the gallery's WebServer, all on one event loop
in a thread of their own, so Playwright's synchronous API can drive a real browser against them from
the test's thread. One world and one browser serve the whole test session (per xdist worker)."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from PIL import Image

from bot.adapters.store import Store
from bot.ops.config import Secret, Settings
from bot.web.gallery_server import WebServer
from testing.fake_discord import MANAGE_MESSAGES, FakeDiscord
from tests.gallery_seed import post_image

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SESSION_SECRET = "web-test-session-secret-0123456789abcdef"
START = 1_760_000_000.0  # 2025-10-09 UTC
DAY = 86_400.0
MY_IMAGES = 45  # more than one page (30)
ROOMY = (10_000, 60.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@dataclass
class Seeded:
    """Ids of the seeded images, by what they are."""

    mine: list[int] = field(default_factory=list)  # newest last
    watercolor: list[int] = field(default_factory=list)
    chinese: list[int] = field(default_factory=list)
    other_server: list[int] = field(default_factory=list)
    personal: list[int] = field(default_factory=list)
    private_mine: int = 0
    theirs: int = 0  # the moderator's image in the same server
    other_server_id: int = 0
    # The server galleries (seed_server_gallery): images by other members of the test guild.
    carol: int = 0  # a member of the test guild (and Carol's images are real Discord messages)
    carol_images: list[int] = field(default_factory=list)  # newest last; posted as Discord messages
    carol_private: int = 0  # delivered by DM: never in the server's gallery
    carol_video: int = 0  # an Animate of carol_images[0]
    banned: int = 0  # a member banned from the bot in the test guild
    banned_image: int = 0
    elsewhere_id: int = 0  # a server plain-pat is not in, with its gallery on
    elsewhere_image: int = 0
    attachments: dict[int, str] = field(default_factory=dict)  # job id -> its Discord attachment link


class WebWorld:
    """Everything the gallery talks to, running on a loop in a background thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="web-world", daemon=True)
        self._thread.start()
        self.fake = FakeDiscord()
        self.seeded = Seeded()
        self.servers: list[WebServer] = []
        self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        await self.fake.start()
        self.pictures = web.Application()
        self.pictures.router.add_get("/img/{name}.png", self._picture)
        self._pictures_runner = web.AppRunner(self.pictures)
        await self._pictures_runner.setup()
        await web.TCPSite(self._pictures_runner, "127.0.0.1", 0).start()
        self.pictures_port = self._pictures_runner.addresses[0][1]
        self.store = await Store.open(self.root / "web.db")
        await self._seed()
        await self._seed_server_gallery()
        self.server = await self.start_server()

    async def _picture(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        shade = int(name) % 200 if name.isdigit() else 0
        return web.Response(body=png((shade, 120, 200)), content_type="image/png")

    def settings(self, **overrides: Any) -> Settings:
        port = free_port()
        base: dict[str, Any] = {
            "api_key": Secret("web-test-api-key-never-shown"),
            "base_url": f"http://127.0.0.1:{self.pictures_port}",
            "database_path": self.root / "web.db",
            "discord_api_base": self.fake.api_base,
            "web_port": port,
            "web_session_secret": Secret(SESSION_SECRET),
            "discord_client_id": self.fake.application_id,
            "discord_client_secret": Secret(self.fake.oauth.client_secret),
            # The bot's token, for bot/web/discord_rest.py: memberships, pictures and Delete; the
            # dashboard's role checks and mod-log posts.
            "discord_token": Secret(self.fake.token),
            "discord_authorize_url": self.fake.oauth.authorize_url,
        }
        # Built anew rather than copied: model_copy would take a misspelt or unchecked override silently.
        return Settings(**(base | overrides))

    async def start_server(
        self,
        *,
        login_rate: tuple[int, float] = ROOMY,
        search_rate: tuple[int, float] = ROOMY,
        **overrides: Any,
    ) -> WebServer:
        """A gallery server on the world's store; `overrides` are settings. The shared one has roomy
        rate limits (every test signs in from 127.0.0.1); the limits' own test starts a strict one."""
        server = WebServer(
            self.settings(**overrides), self.store, login_rate=login_rate, search_rate=search_rate
        )
        await server.start()
        self.servers.append(server)
        return server

    def url(self, path: str = "", server: WebServer | None = None) -> str:
        return f"http://127.0.0.1:{(server or self.server).port}{path}"

    async def _seed(self) -> None:
        fake, s = self.fake, self.seeded
        me = fake.user_id
        # A moderator by Manage Messages alone (the fake's moderator also has Manage Server).
        self.helper_role_id = fake.add_role(fake.guild_id, "Helper", MANAGE_MESSAGES)
        self.helper_id = fake.add_member(fake.guild_id, username="helper-hana", roles=[self.helper_role_id])
        s.other_server_id = fake.add_guild("Second Home", owner_id=fake.owner_id)
        fake.add_member(s.other_server_id, me)
        english = ["a lighthouse at dusk", "a watercolor cat", "mountains in fog", "a red bicycle"]
        chinese = ["水彩画的小猫", "中国山水，远山", "夜晚的城市灯光", "一只水彩的狐狸"]
        for n in range(MY_IMAGES):
            prompt = (english + chinese)[n % 8] + f" #{n}"
            guild: int | None = fake.guild_id
            if n % 5 == 3:
                guild = s.other_server_id
            elif n % 9 == 4:
                guild = None
            job_id = await post_image(
                self.store,
                user_id=me,
                prompt=prompt,
                guild_id=guild,
                channel_id=fake.channel_id,
                created_at=START + n * DAY,
                aspect_ratio="16:9" if n % 4 == 1 else "1:1",
                style="Ink" if n % 6 == 1 else None,
                url=f"http://127.0.0.1:{self.pictures_port}/img/{n}.png",
                message_id=900_000 + n,
            )
            s.mine.append(job_id)
            if "watercolor" in prompt:
                s.watercolor.append(job_id)
            if "水彩" in prompt:
                s.chinese.append(job_id)
            if guild == s.other_server_id:
                s.other_server.append(job_id)
            if guild is None:
                s.personal.append(job_id)
        s.private_mine = await post_image(
            self.store,
            user_id=me,
            prompt="a private sketch",
            guild_id=fake.guild_id,
            created_at=START - DAY,
            deliver_to="dm",
            url=f"http://127.0.0.1:{self.pictures_port}/img/7.png",
        )
        s.theirs = await post_image(
            self.store,
            user_id=fake.moderator_id,
            prompt="the moderator's secret watercolor 水彩",
            guild_id=fake.guild_id,
            created_at=START + DAY / 2,
            url=f"http://127.0.0.1:{self.pictures_port}/img/9.png",
        )

    async def post_message(self, channel_id: int, data: bytes, filename: str = "image.png") -> dict[str, Any]:
        """A message with one attachment, posted through the fake's REST API with the bot's token (as
        the bot posts its images): a real message whose attachment link the fake signs and expires."""
        form = aiohttp.FormData()
        form.add_field("payload_json", json.dumps({"content": "", "attachments": [{"id": 0}]}))
        form.add_field("files[0]", data, filename=filename, content_type="image/png")
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.fake.api_base}/channels/{channel_id}/messages",
                data=form,
                headers={"Authorization": f"Bot {self.fake.token}"},
            ) as response,
        ):
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def _seed_server_gallery(self) -> None:
        """Other members' images in the test guild, for the server galleries: Carol's are real Discord
        messages (their service links are dead, so pictures must come from Discord), one is private, one
        a video; a banned member's; and a server plain-pat is not in, with its gallery on."""
        fake, s = self.fake, self.seeded
        s.carol = fake.add_member(fake.guild_id, username="carol")
        dead = f"http://127.0.0.1:{self.pictures_port}/gone.png"
        for n, prompt in enumerate(["a harbour of paper boats", "纸船的港口，水彩", "a glass greenhouse"]):
            message = await self.post_message(fake.channel_id, png((200, 40 * n, 90), (600, 400)))
            job = await post_image(
                self.store,
                user_id=s.carol,
                prompt=prompt,
                guild_id=fake.guild_id,
                channel_id=fake.channel_id,
                created_at=START + (60 + n) * DAY,
                url=dead,
                message_id=int(message["id"]),
                reference_urls=("https://cdn.example/ref.png",) if n == 0 else (),
            )
            s.carol_images.append(job)
            s.attachments[job] = message["attachments"][0]["url"]
        s.carol_private = await post_image(
            self.store, user_id=s.carol, prompt="carol's private sketch", guild_id=fake.guild_id,
            created_at=START + 64 * DAY, deliver_to="dm", url=dead,
        )  # fmt: skip
        s.carol_video = await post_image(
            self.store, user_id=s.carol, prompt="paper boats drifting (video)", guild_id=fake.guild_id,
            created_at=START + 65 * DAY, url=dead, media="video", source_job_id=s.carol_images[0],
        )  # fmt: skip
        s.banned = fake.add_member(fake.guild_id, username="banned-bo")
        s.banned_image = await post_image(
            self.store, user_id=s.banned, prompt="an image by a banned member", guild_id=fake.guild_id,
            created_at=START + 66 * DAY, url=f"http://127.0.0.1:{self.pictures_port}/img/3.png",
        )  # fmt: skip
        await self.store.settings.ban(
            fake.guild_id, s.banned, reason="spam", expires_at=None, actor_id=fake.moderator_id, now=START
        )
        s.elsewhere_id = fake.add_guild("Elsewhere")
        s.elsewhere_image = await post_image(
            self.store, user_id=fake.owner_id, prompt="elsewhere secret", guild_id=s.elsewhere_id,
            created_at=START + 67 * DAY, url=f"http://127.0.0.1:{self.pictures_port}/img/5.png",
        )  # fmt: skip
        await self.store.gallery.set_switches(s.elsewhere_id, fake.owner_id, START, enabled=True)

    async def gallery(
        self, enabled: bool, hide_banned: bool | None = None, guild_id: int | None = None
    ) -> None:
        """Turn a server's gallery on or off (the test guild's unless told), as its admin would."""
        guild = guild_id or self.fake.guild_id
        await self.store.gallery.set_switches(
            guild, self.fake.owner_id, START, enabled=enabled, hide_banned=hide_banned
        )

    async def start_browser(self) -> tuple[Any, Any]:
        """Debian's chromium (`make test` installs it when missing), headless, through Playwright."""
        from playwright.async_api import async_playwright

        playwright = await async_playwright().start()
        try:
            chromium = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
            )
        except BaseException:
            await playwright.stop()
            raise
        return playwright, chromium

    async def stop_browser(self, playwright: Any, chromium: Any) -> None:
        try:
            await chromium.close()
        finally:
            await playwright.stop()

    async def _stop(self) -> None:
        for server in self.servers:
            await server.stop()
        await self.store.close()
        await self._pictures_runner.cleanup()
        await self.fake.stop()

    def close(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
