"""An in-process fake of Discord (gateway + REST API v10) for running the real discord.py client in tests.

The fake is an aiohttp server on 127.0.0.1. ``FakeDiscord.patch_discord()`` points discord.py's REST base,
gateway and CDN base at it, so a real ``discord.Client``/``commands.Bot`` logs in, connects, syncs commands
and answers interactions exactly as it would against Discord. Payloads mirror what discord.py parses
(discord/state.py, guild.py, member.py, message.py, interactions.py). Every HTTP request is recorded.

Sharding: a client that IDENTIFYs with ``shard: [id, count]`` gets READY and GUILD_CREATE for the servers
of its shard only, and each server's events go to the connection of shard ``(guild_id >> 22) % count`` (DMs
to shard 0), as on Discord; several connections (shards of one process, or several processes) are held at
once. ``GET /gateway/bot`` recommends ``recommended_shards`` shards.

Typical use::

    async with running_fake() as fake, run_client(fake, bot):
        inter = await fake.invoke_slash("ping", {"text": "hi"})
        callback = await fake.wait_for_callback(inter)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import io
import itertools
import json
import mimetypes
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import discord
import yarl
from aiohttp import BodyPartReader, WSMsgType, hdrs, web
from PIL import Image

from testing.fake_oauth import FakeOAuth

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
MANAGE_MESSAGES = 1 << 13
EVERYONE_PERMISSIONS = (  # view, send, embed links, attach files, read history, reactions, app commands
    (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 31)
)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES
# Follow-ups per interaction of a user-installed app used outside servers that installed it.
MAX_USER_INSTALL_FOLLOWUPS = 5
ALL_PERMISSIONS = discord.Permissions.all().value

# Gateway intents that change what the fake sends.
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12

FILESIZE_LIMITS = {0: 10 * 1024**2, 1: 10 * 1024**2, 2: 50 * 1024**2, 3: 100 * 1024**2}  # per boost tier
EPHEMERAL = 1 << 6
LOADING = 1 << 7  # flag of the "Bot is thinking..." message that a type 5 deferral creates

# Payload fields the fake never varies, packed like Discord's JSON so the varying ones stand out.
# fmt: off
USER_TEMPLATE: dict[str, Any] = {
    "avatar": None, "public_flags": 0, "flags": 0, "banner": None, "accent_color": None,
    "avatar_decoration_data": None, "collectibles": None, "primary_guild": None,
}
ROLE_TEMPLATE: dict[str, Any] = {
    "color": 0, "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
    "hoist": False, "icon": None, "unicode_emoji": None, "managed": False, "mentionable": False, "flags": 0,
}
MEMBER_TEMPLATE: dict[str, Any] = {
    "avatar": None, "banner": None, "premium_since": None, "deaf": False, "mute": False, "pending": False,
    "flags": 0, "communication_disabled_until": None,
}
TEXT_CHANNEL_TEMPLATE: dict[str, Any] = {
    "type": 0, "permission_overwrites": [], "parent_id": None, "topic": None, "nsfw": False,
    "rate_limit_per_user": 0, "last_message_id": None, "flags": 0,
}
GUILD_TEMPLATE: dict[str, Any] = {
    "icon": None, "splash": None, "discovery_splash": None, "banner": None, "description": None,
    "region": "deprecated", "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0,
    "default_message_notifications": 1, "explicit_content_filter": 0, "features": [], "mfa_level": 0,
    "system_channel_flags": 0, "rules_channel_id": None, "public_updates_channel_id": None,
    "safety_alerts_channel_id": None, "vanity_url_code": None, "preferred_locale": "en-US", "nsfw_level": 0,
    "premium_progress_bar_enabled": False, "max_members": 500_000, "max_video_channel_users": 25,
    "emojis": [], "stickers": [], "unavailable": False, "voice_states": [], "threads": [], "presences": [],
    "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
}
MESSAGE_TEMPLATE: dict[str, Any] = {
    "type": 0, "content": "", "edited_timestamp": None, "tts": False, "mention_everyone": False,
    "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "components": [],
    "pinned": False, "flags": 0,
}
COMMAND_TEMPLATE: dict[str, Any] = {
    "type": 1, "description": "", "default_member_permissions": None, "nsfw": False,
    "integration_types": [0], "contexts": None,
}
READY_TEMPLATE: dict[str, Any] = {
    "v": 10, "session_type": "normal", "private_channels": [], "relationships": [], "presences": [],
    "user_settings": {}, "guild_join_requests": [], "geo_ordered_rtc_regions": ["local"],
    "_trace": ['["fake-discord",{"micros":0}]'],
}
APPLICATION_TEMPLATE: dict[str, Any] = {  # a non-null interactions_endpoint_url makes discord.py warn
    "icon": None, "description": "", "bot_public": True, "bot_require_code_grant": False, "flags": 0,
    "team": None, "redirect_uris": [], "interactions_endpoint_url": None,
}
RATE_LIMIT_HEADERS = {  # discord.py only retries a 429 carrying Via; without it assumes a Cloudflare ban
    "Via": "1.1 google", "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
    "X-RateLimit-Bucket": "fakebucket", "X-RateLimit-Scope": "user",
}
# fmt: on

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


# Discord's rule for chat-input command and option names, localized ones included: lowercase where the
# script has case, 1-32 characters, letters/digits of any script, "-" and "_", no spaces.
_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


def _command_name_problems(body: Mapping[str, Any], where: str = "") -> list[str]:
    """Names (and their localizations) of a command, its options and choices that Discord would refuse."""
    problems: list[str] = []
    path = f"{where}{body.get('name')}"
    names = [body.get("name", ""), *(body.get("name_localizations") or {}).values()]
    if body.get("type", 1) == 1 or "options" in body or where:
        for name in names:
            if not isinstance(name, str) or not _COMMAND_NAME.match(name) or name != name.lower():
                problems.append(f"{path}: invalid name {name!r}")
    else:
        # A user or message context menu: 1-32 characters, spaces and capitals allowed.
        for name in names:
            if not isinstance(name, str) or not 1 <= len(name) <= 32 or name != name.strip():
                problems.append(f"{path}: invalid context menu name {name!r}")
    for locale, text in (body.get("description_localizations") or {}).items():
        if not 1 <= len(text) <= 100:
            problems.append(f"{path}: description for {locale} is not 1-100 characters")
    for choice in body.get("choices") or []:
        for locale, text in (choice.get("name_localizations") or {}).items():
            if not 1 <= len(text) <= 100:
                problems.append(f"{path}: choice name for {locale} is not 1-100 characters")
    for option in body.get("options") or []:
        problems += _command_name_problems(option, f"{path} ")
    return problems


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """The shard that receives a server's events (Discord's formula); DMs go to shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # discord.py only parses a body whose Content-Type is exactly "application/json", as Discord sends it;
    # aiohttp's web.json_response appends "; charset=utf-8", which discord.py would hand back as plain text.
    body = json.dumps(data).encode()
    return web.Response(
        status=status, body=body, headers={**(headers or {}), "Content-Type": "application/json"}
    )


class ApiError(Exception):
    """Raised inside route handlers; rendered as Discord's JSON error body."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def _form_error(key: str, code: str, message: str | None = None) -> ApiError:
    error = {"code": code, "message": message or code}
    return ApiError(400, 50035, "Invalid Form Body", {key: {"_errors": [error]}})


def _too_long(key: str, limit: int) -> ApiError:
    return _form_error(key, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


# Discord's limits on one message (https://discord.com/developers/docs/resources/message#create-message).
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_FILES = 10
EMBED_LIMITS = {"title": 256, "description": 4096}
MAX_EMBED_TOTAL = 6000  # title, description, fields, footer and author of all embeds together


def _check_embeds(embeds: list[dict[str, Any]]) -> None:
    if len(embeds) > MAX_EMBEDS:
        raise _too_long("embeds", MAX_EMBEDS)
    total = 0
    for index, embed in enumerate(embeds):
        for key, limit in EMBED_LIMITS.items():
            if len(str(embed.get(key) or "")) > limit:
                raise _too_long(f"embeds.{index}.{key}", limit)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise _too_long(f"embeds.{index}.fields", 25)
        total += len(str(embed.get("title") or "")) + len(str(embed.get("description") or ""))
        total += sum(len(str(f.get("name", ""))) + len(str(f.get("value", ""))) for f in fields)
        total += len(str((embed.get("footer") or {}).get("text", "")))
        total += len(str((embed.get("author") or {}).get("name", "")))
    if total > MAX_EMBED_TOTAL:
        raise _form_error("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def creating_new(key: str, uploads: Mapping[int, Any]) -> bool:
    """Whether an edit's attachment entry names an upload of this call (its `files[n]` index)."""
    return key.isdigit() and int(key) in uploads


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class UploadedFile:
    field: str  # multipart field name, e.g. "files[0]"
    filename: str
    content_type: str  # as the client sent it (discord.py always says application/octet-stream)
    data: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the /api/v10 prefix for API calls; CDN paths as-is
    query: dict[str, str]
    headers: dict[str, str]
    json: Any  # parsed JSON body, or the payload_json part of a multipart body
    files: list[UploadedFile]
    received_at: float  # time.monotonic() on arrival, before any handling
    api: bool = True
    status: int = 0  # filled in once answered


@dataclass
class FakeInteraction:
    """One interaction the fake sent, and what the bot did with it."""

    id: int
    token: str
    type: int  # 2 application command, 3 component, 5 modal submit
    channel_id: int
    guild_id: int | None
    user_id: int
    payload: dict[str, Any]  # the INTERACTION_CREATE data as sent
    attachment_size_limit: int
    message_id: int | None = None  # the message a component lives on
    sent_at: float = 0.0  # time.monotonic() just before the INTERACTION_CREATE frame went out
    response_type: int | None = None
    response: dict[str, Any] | None = None  # the callback body ({"type", "data"})
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    followups_sent: int = 0  # every follow-up POST Discord accepted
    followup_limit: int | None = None  # 5 for a user-installed app outside servers that installed it
    expired: bool = False
    shard: int | None = None  # the shard whose connection received it (None: an unsharded client's)


@dataclass
class FakeMember:
    user_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=_now_iso)


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    channel_ids: list[int] = field(default_factory=list)
    locale: str = "en-US"  # the server's preferred locale (Community setting): `guild_locale` in interactions
    roles: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    bot_present: bool = True  # False: a server that did not add the bot (people may use their own install)

    @property
    def filesize_limit(self) -> int:
        return FILESIZE_LIMITS[self.premium_tier]


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    response: Callable[[], web.Response]
    remaining: int | None  # None: forever


@dataclass
class _GatewaySession:
    ws: web.WebSocketResponse
    compressor: Any  # a zlib compressobj when the client asked for zlib-stream, else None (text frames)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # zlib-stream frames must leave in order
    serial: int = 0
    session_id: str = ""
    seq: int = 0
    intents: int = 0
    ready: bool = False
    heartbeats: int = 0
    shard: tuple[int, int] | None = None  # [id, count] from IDENTIFY; None: an unsharded client sees all

    def owns(self, guild_id: int | None) -> bool:
        return self.shard is None or shard_of(guild_id, self.shard[1]) == self.shard[0]


REC = web.RequestKey("rec", RecordedRequest)


def _snowflakes() -> Iterator[int]:
    """Real-looking unique snowflakes: milliseconds since 2015 << 22 | worker | 12-bit increment."""
    for increment in itertools.count():
        yield ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (1 << 17) | (increment & 0xFFF)


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # not an image: Discord then leaves out width/height
        return None


def _png(size: tuple[int, int] = (1, 1)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (88, 101, 242, 255)).save(out, format="PNG")
    return out.getvalue()


def _without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in keys}


class FakeDiscord:
    """Gateway + REST fake. Configure the world, ``await start()``, then connect clients (see run_client)."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_username: str = "imagine-bot",
        premium_tier: int = 0,
        heartbeat_interval_ms: int = 41_250,
        callback_deadline: float | None = None,
        recommended_shards: int = 1,
    ) -> None:
        self._ids = _snowflakes()
        self.token = token
        self.recommended_shards = recommended_shards  # GET /gateway/bot's "shards"
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # Discord forgets interactions not answered within 3 s; off by default so slow CI does not flake.
        self.callback_deadline = callback_deadline
        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}  # every message, ephemeral ones included
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # key None: global, else a guild id
        self.interactions: dict[int, FakeInteraction] = {}
        self.requests: list[RecordedRequest] = []
        self.gateway_log: list[dict[str, Any]] = []  # every frame clients sent, in order
        self.sessions_started = 0
        self.port = 0
        self._by_token: dict[str, FakeInteraction] = {}
        self._blobs: dict[int, tuple[bytes, str]] = {}  # attachment id -> (bytes, content type)
        self._expired_signatures: set[str] = set()
        self._secret = secrets.token_bytes(16)
        self._last_issued = 0
        self._faults: list[_Fault] = []
        # (method, path regex, seconds): Discord taking its time over a request before handling it.
        self._slow: list[tuple[str, re.Pattern[str], float]] = []
        self._sessions: list[_GatewaySession] = []
        self._known_sessions: dict[str, _GatewaySession] = {}  # session id -> its latest socket, for RESUME
        self._changed = asyncio.Condition()
        self.in_flight = 0  # REST requests received and not answered yet (see wait_idle)
        self._runner: web.AppRunner | None = None
        self._gateway_refused_until = 0.0  # time.monotonic(); until then new gateway connections get 503

        # Modern applications share their id with their bot user.
        self.bot_user_id = self.application_id = self.add_user(bot_username, bot=True)
        self.owner_id = self.add_user("guild-owner")
        self.moderator_id = self.add_user("mod-mia")
        self.user_id = self.add_user("plain-pat")
        self.guild_id = self.add_guild(
            "Imagine Test Guild", owner_id=self.owner_id, premium_tier=premium_tier
        )
        self.channel_id = self.guilds[self.guild_id].channel_ids[0]
        self.moderator_role_id = self.add_role(self.guild_id, "Moderator", MANAGE_GUILD | MANAGE_MESSAGES)
        self.add_member(self.guild_id, self.moderator_id, roles=[self.moderator_role_id])
        self.add_member(self.guild_id, self.user_id)
        # Sign-in with Discord (OAuth2) for the web gallery: testing/fake_oauth.py.
        self.oauth = FakeOAuth(self)

    # ----------------------------------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=200 * 1024**2)
        self._add_routes(app.router)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close client sockets (1001: clients would reconnect, so close them first) and the server."""
        for session in list(self._sessions):
            await session.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point every URL discord.py builds (REST, gateway, CDN assets) at this fake."""
        http, gateway, asset = discord.http.Route, discord.gateway.DiscordWebSocket, discord.asset.Asset
        saved = (http.BASE, gateway.DEFAULT_GATEWAY, asset.BASE)
        http.BASE, gateway.DEFAULT_GATEWAY, asset.BASE = (
            self.api_base,
            yarl.URL(self.gateway_url),
            self.base_url,
        )
        try:
            yield
        finally:
            http.BASE, gateway.DEFAULT_GATEWAY, asset.BASE = saved

    # ---------------------------------------------------------------------- world set-up (before connecting)

    def add_user(self, username: str, *, bot: bool = False, user_id: int | None = None) -> int:
        uid = user_id or next(self._ids)
        self.users[uid] = copy.deepcopy(USER_TEMPLATE) | {
            "id": str(uid),
            "username": username,
            "discriminator": "4821" if bot else "0",  # bots keep discriminators, people have "0" now
            "global_name": None if bot else username.title(),
            "bot": bot,
        }
        return uid

    def add_guild(
        self,
        name: str,
        *,
        owner_id: int | None = None,
        premium_tier: int = 0,
        guild_id: int | None = None,
        shard: tuple[int, int] | None = None,
        with_bot: bool = True,
    ) -> int:
        """A guild with an @everyone role (id == guild id), a #general channel, its owner and the bot.

        ``shard=(id, count)`` picks an id whose events go to that shard when the bot runs ``count``.
        ``with_bot=False``: a server that never added the bot. The bot gets no GUILD_CREATE for it and
        its channels answer the bot token 403 Missing Access; members reach the app there only through
        their own (user) install."""
        gid = guild_id or next(self._ids)
        if shard is not None and guild_id is None:
            # Move the timestamp part a few milliseconds on, to the next value on that shard.
            stamp = gid >> 22
            gid = ((stamp + (shard[0] - stamp) % shard[1]) << 22) | (gid & ((1 << 22) - 1))
        guild = self.guilds[gid] = FakeGuild(gid, name, owner_id or self.owner_id, premium_tier)
        guild.bot_present = with_bot
        self.add_role(gid, "@everyone", EVERYONE_PERMISSIONS, role_id=gid)
        self.add_channel(gid, "general")
        if not with_bot:
            self.add_member(gid, guild.owner_id)
            return gid
        bot_role = self.add_role(gid, self.users[self.bot_user_id]["username"], BOT_PERMISSIONS)
        guild.roles[bot_role] |= {"managed": True, "tags": {"bot_id": str(self.bot_user_id)}}
        self.add_member(gid, self.bot_user_id, roles=[bot_role])
        self.add_member(gid, guild.owner_id)
        return gid

    def add_channel(self, guild_id: int, name: str, *, channel_id: int | None = None) -> int:
        cid = channel_id or next(self._ids)
        guild = self.guilds[guild_id]
        position = len(guild.channel_ids)
        self.channels[cid] = copy.deepcopy(TEXT_CHANNEL_TEMPLATE) | {
            "id": str(cid),
            "guild_id": str(guild_id),
            "name": name,
            "position": position,
        }
        guild.channel_ids.append(cid)
        return cid

    def add_role(self, guild_id: int, name: str, permissions: int, *, role_id: int | None = None) -> int:
        rid = role_id or next(self._ids)
        roles = self.guilds[guild_id].roles
        extra = {"id": str(rid), "name": name, "permissions": str(permissions), "position": len(roles)}
        roles[rid] = copy.deepcopy(ROLE_TEMPLATE) | extra
        return rid

    def add_member(
        self,
        guild_id: int,
        user_id: int | None = None,
        *,
        username: str | None = None,
        roles: Sequence[int] = (),
        nick: str | None = None,
    ) -> int:
        """Add a member (creating the user when only ``username`` is given); returns the user id."""
        uid = user_id or self.add_user(username or f"user-{len(self.users)}")
        self.guilds[guild_id].members[uid] = FakeMember(uid, list(roles), nick)
        return uid

    def member_permissions(self, guild_id: int, user_id: int) -> int:
        """Guild-level permissions: owner and administrators get all; channel overwrites are not modelled."""
        guild = self.guilds[guild_id]
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        perms = int(guild.roles[guild_id]["permissions"])
        for role_id in guild.members[user_id].roles:
            perms |= int(guild.roles[role_id]["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def deny_in_channel(self, channel_id: int, role_id: int, permissions: int) -> None:
        """A channel permission overwrite denying `permissions` to a role (send before clients connect)."""
        overwrite = {"id": str(role_id), "type": 0, "allow": "0", "deny": str(permissions)}
        self.channels[channel_id]["permission_overwrites"].append(overwrite)

    def bot_role_id(self, guild_id: int) -> int:
        return self.guilds[guild_id].members[self.bot_user_id].roles[0]

    def connected_clients(self) -> int:
        """Gateway connections still open (a client that closed cleanly has none)."""
        return sum(1 for s in self._sessions if not s.ws.closed)

    def connected_shards(self) -> list[tuple[int, int] | None]:
        """The ``[id, count]`` of every gateway connection past READY (None for an unsharded client)."""
        return [s.shard for s in self._live_sessions()]

    def dm_channel(self, user_id: int) -> int:
        """The bot's DM channel with a user, created on first use."""
        for cid, channel in self.channels.items():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == str(user_id):
                return cid
        cid = next(self._ids)
        recipients = [self.users[user_id]]
        self.channels[cid] = {
            "id": str(cid),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": recipients,
        }
        return cid

    def add_group_dm(self, user_ids: Sequence[int], *, name: str | None = None) -> int:
        """A group DM between people (the bot is never in one): type 3, its recipients, no guild."""
        cid = next(self._ids)
        self.channels[cid] = {
            "id": str(cid),
            "type": 3,
            "name": name,
            "last_message_id": None,
            "flags": 0,
            "owner_id": str(user_ids[0]),
            "recipients": [self.users[uid] for uid in user_ids],
        }
        return cid

    def bot_sees(self, channel: Mapping[str, Any]) -> bool:
        """Whether the bot token may use a channel: a server that added the bot, or its own DMs."""
        if "guild_id" in channel:
            return self.guilds[int(channel["guild_id"])].bot_present
        return channel["type"] == 1  # the bot's own DMs (the fake has no others); never a group DM

    def _member_payload(
        self, guild_id: int, user_id: int, *, with_permissions: bool = False
    ) -> dict[str, Any]:
        member = self.guilds[guild_id].members[user_id]
        payload = copy.deepcopy(MEMBER_TEMPLATE) | {
            "user": self.users[user_id],
            "roles": [str(r) for r in member.roles],
            "nick": member.nick,
            "joined_at": member.joined_at,
        }
        if with_permissions:  # interactions carry the member's resolved permissions
            payload["permissions"] = str(self.member_permissions(guild_id, user_id))
        return payload

    def _guild_create_payload(self, guild: FakeGuild, intents: int) -> dict[str, Any]:
        # Without the presences intent Discord only includes the bot's own member in GUILD_CREATE.
        shown = guild.members if intents & INTENT_GUILD_PRESENCES else [self.bot_user_id]
        return copy.deepcopy(GUILD_TEMPLATE) | {
            "id": str(guild.id),
            "name": guild.name,
            "owner_id": str(guild.owner_id),
            "system_channel_id": str(guild.channel_ids[0]),
            "premium_tier": guild.premium_tier,  # discord.Guild.filesize_limit derives from this
            "preferred_locale": guild.locale,
            "premium_subscription_count": (0, 2, 7, 14)[guild.premium_tier],
            "roles": list(guild.roles.values()),
            "joined_at": guild.members[self.bot_user_id].joined_at,
            "large": len(guild.members) >= 250,
            "member_count": len(guild.members),
            "members": [self._member_payload(guild.id, uid) for uid in shown],
            "channels": [_without(self.channels[cid], "guild_id") for cid in guild.channel_ids],
        }

    # ----------------------------------------------------------------------------------------- gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if time.monotonic() < self._gateway_refused_until:
            return web.Response(status=503, text="upstream connect error")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        # discord.py asks for zlib-stream (zstd-stream if zstandard is installed) but also accepts plain
        # TEXT frames, so only zlib-stream is honoured and anything else gets text.
        compressor = zlib.compressobj() if request.query.get("compress") == "zlib-stream" else None
        session = _GatewaySession(ws, compressor)
        self._sessions.append(session)
        try:
            await self._send(session, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_frame(session, json.loads(msg.data))
        finally:
            session.ready = False
            self._sessions.remove(session)
            await self._notify()
        return ws

    async def _on_frame(self, session: _GatewaySession, frame: dict[str, Any]) -> None:
        self.gateway_log.append(frame)
        op, data = frame.get("op"), frame.get("d") or {}
        if op == 1:  # HEARTBEAT
            session.heartbeats += 1
            await self._send(session, {"op": 11, "d": None})
            await self._notify()
        elif op == 2:  # IDENTIFY
            shard = data.get("shard")
            if data["token"] != self.token:
                await session.ws.close(code=4004, message=b"Authentication failed.")
            elif shard is not None and not (len(shard) == 2 and 0 <= int(shard[0]) < int(shard[1])):
                await session.ws.close(code=4010, message=b"Invalid shard.")
            else:
                session.shard = (int(shard[0]), int(shard[1])) if shard is not None else None
                await self._identify(session, data)
        elif op == 6:  # RESUME: accepted, but nothing is replayed (the fake keeps no event backlog)
            previous = self._known_sessions.get(data.get("session_id", ""))
            if previous is not None and data["token"] == self.token:
                self.sessions_started += 1
                session.serial, session.session_id = self.sessions_started, previous.session_id
                session.seq, session.intents = previous.seq, previous.intents
                session.shard = previous.shard  # Discord remembers the session's shard
                self._known_sessions[session.session_id] = session
                await self._dispatch(session, "RESUMED", {})
                session.ready = True
                await self._notify()
            else:
                await self._send(session, {"op": 9, "d": False})
        elif op == 8:  # REQUEST_GUILD_MEMBERS: discord.py chunks guilds at start-up with the members intent
            guild = self.guilds[int(data["guild_id"])]
            members = [self._member_payload(guild.id, uid) for uid in guild.members]
            chunk = {"guild_id": str(guild.id), "members": members, "chunk_index": 0, "chunk_count": 1}
            chunk |= {"not_found": [], "nonce": data.get("nonce")}
            await self._dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _identify(self, session: _GatewaySession, data: dict[str, Any]) -> None:
        self.sessions_started += 1
        session.serial, session.intents = self.sessions_started, int(data.get("intents", 0))
        session.session_id = secrets.token_hex(16)
        self._known_sessions[session.session_id] = session
        mine = [guild for guild in self.guilds.values() if guild.bot_present and session.owns(guild.id)]
        ready = copy.deepcopy(READY_TEMPLATE) | {
            "user": self.users[self.bot_user_id] | {"verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in mine],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,  # discord.py RESUMEs here after op 7 or a dropped socket
            "application": {"id": str(self.application_id), "flags": 0},
        }
        if session.shard is not None:  # echoed only to a client that identified with a shard
            ready["shard"] = list(session.shard)
        await self._dispatch(session, "READY", ready)
        for guild in mine:
            await self._dispatch(session, "GUILD_CREATE", self._guild_create_payload(guild, session.intents))
        session.ready = True
        await self._notify()

    async def _send(self, session: _GatewaySession, frame: dict[str, Any]) -> None:
        text = json.dumps({"t": None, "s": None} | frame)
        async with session.lock:
            if session.compressor is None:
                await session.ws.send_str(text)
            else:  # one zlib context per connection; each message ends with the Z_SYNC_FLUSH marker
                data = session.compressor.compress(text.encode())
                await session.ws.send_bytes(data + session.compressor.flush(zlib.Z_SYNC_FLUSH))

    async def _dispatch(self, session: _GatewaySession, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        await self._send(session, {"op": 0, "t": event, "s": session.seq, "d": data})

    def _live_sessions(self) -> list[_GatewaySession]:
        return [s for s in self._sessions if s.ready and not s.ws.closed]

    def _session_for(self, guild_id: int | None) -> _GatewaySession | None:
        """The connection that gets a server's events: the newest one of the shard that owns it."""
        owners = [s for s in self._live_sessions() if s.owns(guild_id)]
        return max(owners, key=lambda s: s.serial) if owners else None

    async def wait_connected(self, *, newer_than: int = 0, timeout: float = 5.0, sessions: int = 1) -> None:
        """Wait for ``sessions`` connections past IDENTIFY/RESUME (READY + GUILD_CREATEs sent) newer than
        ``newer_than`` (a sharded client opens one per shard)."""
        await self._wait(
            lambda: sum(1 for s in self._live_sessions() if s.serial > newer_than) >= sessions, timeout
        )

    async def sync_gateway(self, timeout: float = 5.0) -> None:
        """Barrier: send op 1 on every connection and wait for each client's heartbeat, so the clients
        have processed everything sent before."""
        live = self._live_sessions()
        if not live:
            raise RuntimeError("no client is connected to the fake gateway")
        before = {id(session): session.heartbeats for session in live}
        for session in live:
            await self._send(session, {"op": 1, "d": session.seq})
        await self._wait(
            lambda: all(s.heartbeats > before[id(s)] or s.ws.closed for s in live) or None, timeout
        )

    async def send_reconnect(self) -> None:
        """Send op 7 RECONNECT to every client; discord.py reconnects and RESUMEs."""
        for session in list(self._sessions):
            await self._send(session, {"op": 7, "d": None})

    async def drop_shard(self, shard_id: int, *, refuse_for: float = 0.0) -> None:
        """Close the connections of one shard (1001 going away: clients reconnect and RESUME). With
        ``refuse_for``, new gateway connections are refused that many seconds, as in a gateway outage."""
        self._gateway_refused_until = time.monotonic() + refuse_for
        for session in list(self._sessions):
            if session.shard is not None and session.shard[0] == shard_id:
                await session.ws.close(code=1001)

    # ------------------------------------------------------------------------------------- interactions

    def _find_command(
        self, name: str, guild_id: int | None, command_type: int = 1
    ) -> tuple[dict[str, Any] | None, int | None]:
        for scope in (guild_id, None) if guild_id else (None,):
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == command_type:
                    return command, scope
        return None, None

    async def invoke_slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        subcommand: str | Sequence[str] = (),
        attachments: Mapping[str, dict[str, Any]] | None = None,
        user_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        dm: bool = False,
        locale: str = "en-US",
        user_install: bool = False,
        group_dm: int | None = None,
    ) -> FakeInteraction:
        """Send an INTERACTION_CREATE for ``/name [group] [subcommand] options`` as ``user_id``.

        ``user_install``: through the member's own install of the app (owners ``{"1": user}``) rather
        than the server's; ``dm``: in the member's DM with the bot; ``group_dm``: in that group DM
        channel (context 2, a user install by nature).

        Option types come from the synced command when the fake knows it, else from the Python value
        (str, int, float, bool; an attachment dict from ``make_attachment``). User/role/channel options
        take ids and get their ``resolved`` entries. ``attachments`` is a shortcut for attachment options.
        A command that was never synced is sent as a global command with a fresh id.
        """
        gid = None if dm or group_dm else (guild_id or self.guild_id)
        command, scope = self._find_command(name, gid)
        path = subcommand.split() if isinstance(subcommand, str) else list(subcommand)
        definitions = command.get("options", []) if command else []
        for part in path:
            definitions = next((o.get("options", []) for o in definitions if o["name"] == part), [])
        known = {o["name"]: o["type"] for o in definitions}
        resolved: dict[str, dict[str, Any]] = {}
        values = {**(options or {}), **(attachments or {})}
        leaf = [self._option(k, v, known.get(k), gid, resolved) for k, v in values.items()]
        for depth, part in reversed(list(enumerate(path))):  # wrap in SUB_COMMAND (1) / SUB_COMMAND_GROUP (2)
            leaf = [{"name": part, "type": 2 if depth < len(path) - 1 else 1, "options": leaf}]
        cmd_id = command["id"] if command else str(next(self._ids))
        data: dict[str, Any] = {"id": cmd_id, "name": name, "type": 1, "options": leaf}
        if scope is not None:
            data["guild_id"] = str(scope)  # discord.py only searches its guild commands when this is set
        if resolved:
            data["resolved"] = resolved
        return await self._send_interaction(
            2,
            data,
            user_id=user_id,
            guild_id=gid,
            channel_id=group_dm or channel_id,
            locale=locale,
            user_install=user_install or group_dm is not None,
        )

    async def post_as_member(
        self,
        content: str,
        *,
        images: Sequence[tuple[str, bytes]] = (),
        embeds: Sequence[dict[str, Any]] = (),
        user_id: int | None = None,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """A member's own message in a channel (as their client would post it), with uploaded files
        and embeds; announced with MESSAGE_CREATE like any other."""
        cid = channel_id or self.channel_id
        files = [UploadedFile(f"files[{i}]", name, "application/octet-stream", data) for i, (name, data) in
                 enumerate(images)]  # fmt: skip
        body: dict[str, Any] = {"content": content, "embeds": list(embeds)}
        message = self._new_message(cid, body, files, limit=FILESIZE_LIMITS[0])
        message["author"] = self.users[user_id or self.user_id]
        await self._announce("MESSAGE_CREATE", message)
        return message

    async def invoke_message_command(
        self, name: str, message_id: int, *, user_id: int | None = None, locale: str = "en-US"
    ) -> FakeInteraction:
        """Pick ``name`` in a message's Apps menu (a MESSAGE command, type 3): Discord sends an
        APPLICATION_COMMAND interaction whose ``target_id`` is the message, given in
        ``resolved.messages`` with freshly signed attachment links."""
        message = self.messages[message_id]
        channel = self.channels[int(message["channel_id"])]
        gid = int(channel["guild_id"]) if "guild_id" in channel else None
        command, scope = self._find_command(name, gid, 3)
        data: dict[str, Any] = {
            "id": command["id"] if command else str(next(self._ids)),
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): self._resign(message)}},
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        return await self._send_interaction(
            2, data, user_id=user_id, guild_id=gid, channel_id=int(channel["id"]), locale=locale
        )

    async def invoke_autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        subcommand: str | Sequence[str] = (),
        user_id: int | None = None,
        guild_id: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """Type in option ``focused`` of ``/name``: an APPLICATION_COMMAND_AUTOCOMPLETE interaction
        (type 4) carrying the options typed so far, the focused one marked ``focused`` (its value is
        the partial text, always a string). The bot answers with callback type 8 and its choices."""
        gid = guild_id or self.guild_id
        command, scope = self._find_command(name, gid)
        path = subcommand.split() if isinstance(subcommand, str) else list(subcommand)
        definitions = command.get("options", []) if command else []
        for part in path:
            definitions = next((o.get("options", []) for o in definitions if o["name"] == part), [])
        known = {o["name"]: o["type"] for o in definitions}
        leaf: list[dict[str, Any]] = []
        for key, value in options.items():
            option = {
                "name": key,
                "type": known.get(key, 3),
                "value": str(value) if key == focused else value,
            }
            if key == focused:
                option["focused"] = True
            leaf.append(option)
        for depth, part in reversed(list(enumerate(path))):
            leaf = [{"name": part, "type": 2 if depth < len(path) - 1 else 1, "options": leaf}]
        data: dict[str, Any] = {
            "id": command["id"] if command else str(next(self._ids)),
            "name": name,
            "type": 1,
            "options": leaf,
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        return await self._send_interaction(
            4, data, user_id=user_id, guild_id=gid, channel_id=None, locale=locale
        )

    def _option(
        self, name: str, value: Any, opt_type: int | None, guild_id: int | None, resolved: dict[str, Any]
    ) -> dict[str, Any]:
        if opt_type is None:
            is_attachment, is_bool = isinstance(value, dict), isinstance(value, bool)
            opt_type = 11 if is_attachment else 5 if is_bool else {int: 4, float: 10}.get(type(value), 3)
        if opt_type == 11:
            resolved.setdefault("attachments", {})[value["id"]] = value
            value = value["id"]
        elif opt_type in (6, 9) and int(value) in self.users:  # USER, MENTIONABLE
            resolved.setdefault("users", {})[str(value)] = self.users[int(value)]
            if guild_id and int(value) in self.guilds[guild_id].members:
                member = self._member_payload(guild_id, int(value), with_permissions=True)
                resolved.setdefault("members", {})[str(value)] = _without(member, "user")
            value = str(value)
        elif opt_type in (8, 9) and guild_id:  # ROLE
            resolved.setdefault("roles", {})[str(value)] = self.guilds[guild_id].roles[int(value)]
            value = str(value)
        elif opt_type == 7:  # CHANNEL
            channel = self.channels[int(value)] | {"permissions": str(ALL_PERMISSIONS)}
            resolved.setdefault("channels", {})[str(value)] = channel
            value = str(value)
        return {"name": name, "type": opt_type, "value": value}

    async def invoke_component(
        self,
        custom_id: str,
        message_id: int,
        *,
        component_type: int = 2,
        values: Sequence[str] | None = None,
        user_id: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """Click a button (type 2) or pick ``values`` in a string select (type 3) of a stored message."""
        message = self.messages[message_id]
        channel = self.channels[int(message["channel_id"])]
        gid = int(channel["guild_id"]) if "guild_id" in channel else None
        # A component on an interaction's message is authorised by the installation that made it.
        owners = (message.get("interaction_metadata") or {}).get("authorizing_integration_owners", {})
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        return await self._send_interaction(
            3,
            data,
            user_id=user_id,
            guild_id=gid,
            channel_id=int(channel["id"]),
            locale=locale,
            message=message,
            user_install="0" not in owners and bool(owners),
        )

    async def submit_modal(
        self,
        custom_id: str,
        fields: Mapping[str, str],
        *,
        user_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        dm: bool = False,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """Submit a modal; ``fields`` maps text-input custom ids to the typed values."""
        rows = [
            {"type": 1, "components": [{"type": 4, "id": i + 2, "custom_id": k, "value": v}]}
            for i, (k, v) in enumerate(fields.items())
        ]
        gid = None if dm else (guild_id or self.guild_id)
        data = {"custom_id": custom_id, "components": rows}
        return await self._send_interaction(
            5, data, user_id=user_id, guild_id=gid, channel_id=channel_id, locale=locale
        )

    async def _send_interaction(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user_id: int | None,
        guild_id: int | None,
        channel_id: int | None,
        locale: str,
        message: dict[str, Any] | None = None,
        user_install: bool = False,
    ) -> FakeInteraction:
        # Discord sends it on the connection of the shard that owns the server (DMs: shard 0).
        session = await self._wait(lambda: self._session_for(guild_id), 5.0)
        uid, iid = user_id or self.user_id, next(self._ids)
        # Real tokens are base64 of "interaction:<id>:<secret>"; urlsafe base64 keeps them path-friendly.
        raw_token = f"interaction:{iid}:{secrets.token_urlsafe(48)}".encode()
        token = base64.urlsafe_b64encode(raw_token).decode().rstrip("=")
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
        }
        private = guild_id is None and channel_id is not None and self.channels[channel_id]["type"] == 3
        # Who authorised it: the server's install ("0": guild id, "0" in the bot's DM) or the member's
        # own ("1": user id). A user install used in a server that also installed the app carries both.
        owners = {"1": str(uid)} if user_install else {"0": str(guild_id or 0)}
        payload |= {
            "authorizing_integration_owners": owners,
            "context": 2 if private else 0 if guild_id else 1,  # PRIVATE_CHANNEL, GUILD, BOT_DM
        }
        if guild_id is None:
            cid = channel_id if private and channel_id is not None else self.dm_channel(uid)
            limit = FILESIZE_LIMITS[0]
            payload |= {
                "user": self.users[uid],
                "channel": self.channels[cid],
                # In a group DM the app acts only through the interaction.
                "app_permissions": str(EVERYONE_PERMISSIONS if private else BOT_PERMISSIONS),
            }
        elif not self.guilds[guild_id].bot_present:
            # A user install in a server without the bot: a partial guild, the member, the channel.
            cid = channel_id or self.guilds[guild_id].channel_ids[0]
            limit = self.guilds[guild_id].filesize_limit
            if uid not in self.guilds[guild_id].members:
                self.add_member(guild_id, uid)
            payload |= {
                "guild_id": str(guild_id),
                "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "member": self._member_payload(guild_id, uid, with_permissions=True),
                "channel": self.channels[cid] | {"permissions": str(self.member_permissions(guild_id, uid))},
                "app_permissions": str(EVERYONE_PERMISSIONS),
            }
        else:
            cid = channel_id or self.guilds[guild_id].channel_ids[0]
            limit = self.guilds[guild_id].filesize_limit
            payload |= {
                "guild_id": str(guild_id),
                "guild": {"id": str(guild_id), "locale": self.guilds[guild_id].locale, "features": []},
                "guild_locale": self.guilds[guild_id].locale,
                "member": self._member_payload(guild_id, uid, with_permissions=True),
                "channel": self.channels[cid] | {"permissions": str(self.member_permissions(guild_id, uid))},
                "app_permissions": str(self.member_permissions(guild_id, self.bot_user_id)),
            }
        # discord.py reads attachment_size_limit unconditionally (KeyError without it).
        payload |= {"channel_id": str(cid), "attachment_size_limit": limit}
        if message is not None:
            payload["message"] = message
        inter = FakeInteraction(iid, token, itype, cid, guild_id, uid, payload, limit)
        if "0" not in owners:
            inter.followup_limit = MAX_USER_INSTALL_FOLLOWUPS
        inter.message_id = int(message["id"]) if message else None
        inter.shard = session.shard[0] if session.shard is not None else None
        self.interactions[iid] = self._by_token[token] = inter
        inter.sent_at = time.monotonic()
        await self._dispatch(session, "INTERACTION_CREATE", payload)
        return inter

    def expire_interaction(self, interaction: FakeInteraction) -> None:
        """Invalidate the token: callback -> 404 Unknown interaction, webhook routes -> 401 Invalid Token."""
        interaction.expired = True

    # --------------------------------------------------------------------------------------- attachments

    def _signed_url(self, path: str) -> str:
        # CDN links carry ex (expiry), is (issued) and hm (signature), hex encoded, and end in a bare "&".
        self._last_issued = max(int(time.time()), self._last_issued + 1)  # so every signing differs
        ex, issued = f"{self._last_issued + 86_400:08x}", f"{self._last_issued:08x}"
        return f"{self.base_url}{path}?ex={ex}&is={issued}&hm={self._signature(path, ex, issued)}&"

    def _proxy_url(self, url: str) -> str:  # Discord's media.discordapp.net twin of a CDN URL
        return url.replace(self.base_url, self.base_url + "/media", 1)

    def _signature(self, path: str, ex: str, issued: str) -> str:
        return hmac.new(self._secret, f"{path}|{ex}|{issued}".encode(), hashlib.sha256).hexdigest()

    def _store_blob(self, channel_id: int, filename: str, data: bytes, *, ephemeral: bool) -> dict[str, Any]:
        att_id = next(self._ids)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self._blobs[att_id] = (data, content_type)
        path = f"/{'ephemeral-attachments' if ephemeral else 'attachments'}/{channel_id}/{att_id}/{filename}"
        url = self._signed_url(path)
        attachment: dict[str, Any] = {
            "id": str(att_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": self._proxy_url(url),
            "content_type": content_type,
        }
        if size := _image_size(data):
            attachment["width"], attachment["height"] = size
        if ephemeral:
            attachment["ephemeral"] = True
        return attachment

    def make_attachment(
        self,
        filename: str,
        content_type: str | None = None,
        size: int | None = None,
        data: bytes | None = None,
        *,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """An attachment as Discord puts it in a slash command's ``resolved.attachments``, served here.

        Without ``data``, images get a real 8x8 PNG and other files ``size`` filler bytes. A ``size`` that
        differs from ``len(data)`` is reported as given, to simulate a lying client.
        """
        if data is None:
            is_image = (content_type or mimetypes.guess_type(filename)[0] or "").startswith("image/")
            data = _png((8, 8)) if is_image and size is None else bytes(i % 251 for i in range(size or 1024))
        attachment = self._store_blob(channel_id or self.channel_id, filename, data, ephemeral=True)
        if content_type is not None:
            attachment["content_type"] = content_type
            self._blobs[int(attachment["id"])] = (data, content_type)
        attachment["size"] = len(data) if size is None else size
        return attachment

    def expire_url(self, url: str) -> None:
        """From now on a GET of this signed URL (and its proxy_url twin) answers 404, like a lapsed link."""
        self._expired_signatures.add(yarl.URL(url).query.get("hm") or "")

    def attachment_bytes(self, attachment: Mapping[str, Any]) -> bytes:
        return self._blobs[int(attachment["id"])][0]

    def _resign(self, message: dict[str, Any]) -> dict[str, Any]:
        # Fetching a message again yields freshly signed attachment URLs (embeds showing them included):
        # that is how bots refresh links that expired.
        fresh: dict[str, str] = {}
        for attachment in message["attachments"]:
            path = yarl.URL(attachment["url"]).path
            fresh[path] = url = self._signed_url(path)
            attachment |= {"url": url, "proxy_url": self._proxy_url(url)}
        for embed in message["embeds"]:
            for key in ("image", "thumbnail"):
                shown = fresh.get(yarl.URL((embed.get(key) or {}).get("url", "")).path)
                if shown is not None:
                    embed[key] |= {"url": shown, "proxy_url": self._proxy_url(shown)}
        return message

    # --------------------------------------------------------------- looking for an earlier delivery
    # What a bot can learn afterwards about a message it may have sent. A channel's and a DM's history
    # list what is there (GET /channels/{id}/messages); the interaction's original message and a
    # follow-up can be fetched by id while the token lives (GET /webhooks/{app}/{token}/messages/…);
    # follow-ups cannot be listed at all, and messages only their requester sees are in no history.

    def _as_read(self, message: dict[str, Any]) -> dict[str, Any]:
        """A stored message as a GET shows it: Discord answers the nonce only to the create call (and
        in the gateway event), so an earlier send cannot be found by its nonce afterwards."""
        return {k: v for k, v in self._resign(message).items() if k != "nonce"}

    async def _cdn(self, request: web.Request) -> web.Response:
        info, q = request.match_info, request.query
        path = f"/{info['kind']}/{info['channel_id']}/{info['attachment_id']}/{info['filename']}"
        blob = self._blobs.get(int(info["attachment_id"]))
        valid = q.get("hm") == self._signature(path, q.get("ex", ""), q.get("is", ""))
        fresh = int(q.get("ex", "0"), 16) > time.time() and q.get("hm") not in self._expired_signatures
        if blob is None or not valid or not fresh:
            return web.Response(status=404, text="This content is no longer available.")
        return web.Response(body=blob[0], headers={hdrs.CONTENT_TYPE: blob[1]})

    async def _avatar(self, request: web.Request) -> web.Response:
        return web.Response(body=_png(), content_type="image/png")

    async def _refresh_urls(self, request: web.Request) -> web.Response:
        urls = request[REC].json["attachment_urls"]
        refreshed = [{"original": u, "refreshed": self._signed_url(yarl.URL(u).path)} for u in urls]
        return json_response({"refreshed_urls": refreshed})

    # ------------------------------------------------------------------------------------ waiting helpers

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, found: Callable[[], T | None], timeout: float) -> T:
        """Re-check ``found`` on every change (request answered, message stored, session state)."""
        async with asyncio.timeout(timeout), self._changed:
            result = await self._changed.wait_for(found)
        assert result is not None  # wait_for only returns a truthy result
        return result

    async def wait_for_request(
        self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0
    ) -> RecordedRequest:
        """First answered request matching ``predicate``, recorded already or waited for."""
        return await self._wait(
            lambda: next((r for r in self.requests if r.status and predicate(r)), None), timeout
        )

    async def wait_for_message(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """Newest stored message (created or edited, ephemeral included) matching ``predicate``."""
        return await self._wait(
            lambda: next((m for m in reversed(self.messages.values()) if predicate(m)), None), timeout
        )

    async def wait_for_callback(self, interaction: FakeInteraction, timeout: float = 5.0) -> RecordedRequest:
        """The bot's POST /interactions/{id}/{token}/callback for this interaction."""
        prefix = f"/interactions/{interaction.id}/"
        return await self.wait_for_request(
            lambda r: r.method == "POST" and r.path.startswith(prefix), timeout
        )

    async def wait_for_requests(
        self, predicate: Callable[[RecordedRequest], bool], count: int, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """The first ``count`` answered requests matching ``predicate``, once that many have come."""

        def enough() -> list[RecordedRequest] | None:
            found = [r for r in self.requests if r.status and predicate(r)]
            return found[:count] if len(found) >= count else None

        return await self._wait(enough, timeout)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until the clients have processed every gateway event sent so far (sync_gateway's
        heartbeat barrier) and no REST request is in flight: a moment where nothing is under way
        between the bot and Discord. A request still on its way through the socket, or one the bot
        starts later (a timer, a background task), is the bot's to account for: combine this with
        the bot's own tasks being done (tests/bot_harness.py: World.settle)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self._live_sessions():
                        await self.sync_gateway(timeout)
                    if self.in_flight == 0:
                        return
                    await self._wait(lambda: self.in_flight == 0 or None, timeout)
        except TimeoutError:
            busy = f"{self.in_flight} request(s) in flight"
            raise TimeoutError(f"the fake Discord was not idle within {timeout:g} s ({busy})") from None

    # ------------------------------------------------------------------------------------ fault injection

    def fail_route(
        self,
        method: str,
        path_pattern: str,
        status: int,
        body: dict[str, Any] | None = None,
        *,
        times: int | None = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` (None: all) requests whose API path fully matches a regex."""
        body = body if body is not None else {"message": f"{status}: injected", "code": 0}
        respond = lambda: json_response(body, status, headers)  # noqa: E731 - a fresh Response per request
        self._faults.append(_Fault(method.upper(), re.compile(path_pattern), respond, times))

    def forbid_channel_posts(self, channel_id: int) -> None:
        body = {"message": "Missing Permissions", "code": 50013}
        self.fail_route("POST", rf"/channels/{channel_id}/messages", 403, body, times=None)

    def rate_limit_once(self, method: str, path_pattern: str, retry_after: float = 0.05) -> None:
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        timing = {"Retry-After": str(max(1, round(retry_after))), "X-RateLimit-Reset-After": str(retry_after)}
        self.fail_route(method, path_pattern, 429, body, headers=RATE_LIMIT_HEADERS | timing)

    def slow_route(self, method: str, path_pattern: str, seconds: float) -> None:
        """Handle every request whose API path fully matches a regex only after `seconds`, as a
        slow Discord does: the request is carried out even if the client is gone by then."""
        self._slow.append((method.upper(), re.compile(path_pattern), seconds))

    def clear_faults(self) -> None:
        self._faults.clear()
        self._slow.clear()

    def _injected_fault(self, rec: RecordedRequest) -> web.Response | None:
        for fault in self._faults:
            if rec.api and fault.method == rec.method and fault.pattern.fullmatch(rec.path):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault.response()
        return None

    # ------------------------------------------------------------------------------------- HTTP plumbing

    def _add_routes(self, r: web.UrlDispatcher) -> None:
        a, app, wh = API_PREFIX, r"/applications/{app_id:\d+}", r"/webhooks/{app_id:\d+}/{token}"
        channel = a + r"/channels/{channel_id:\d+}"
        r.add_get("/", self._gateway)
        r.add_get(a + "/users/@me", self._me)
        r.add_get(a + r"/users/{user_id:\d+}", self._get_user)
        r.add_post(a + "/users/@me/channels", self._open_dm)
        r.add_get(a + "/oauth2/applications/@me", self._application)
        r.add_get(a + "/applications/@me", self._application)
        r.add_get(a + "/gateway", self._gateway_info)
        r.add_get(a + "/gateway/bot", self._gateway_info)
        for path in (a + app + "/commands", a + app + r"/guilds/{guild_id:\d+}/commands"):
            r.add_get(path, self._get_commands)
            r.add_put(path, self._put_commands)
        r.add_post(a + r"/interactions/{interaction_id:\d+}/{token}/callback", self._callback)
        r.add_post(a + wh, self._followup)
        r.add_route("*", a + wh + r"/messages/{message_id:(?:\d+|@original)}", self._webhook_message)
        r.add_get(channel, self._get_channel)
        r.add_post(channel + "/messages", self._post_message)
        r.add_get(channel + "/messages", self._channel_history)
        r.add_post(channel + "/typing", self._typing)
        r.add_route("*", channel + r"/messages/{message_id:\d+}", self._channel_message)
        r.add_get(a + r"/guilds/{guild_id:\d+}", self._get_guild)
        r.add_get(a + r"/guilds/{guild_id:\d+}/members/{user_id:\d+}", self._get_member)
        r.add_get(a + "/users/@me/guilds", self._my_guilds)
        r.add_get(a + r"/guilds/{guild_id:\d+}/channels", self._guild_channels)
        r.add_get(a + r"/guilds/{guild_id:\d+}/roles", self._guild_roles)
        r.add_post(a + "/attachments/refresh-urls", self._refresh_urls)
        cdn = r"/{kind:(?:ephemeral-)?attachments}/{channel_id:\d+}/{attachment_id:\d+}/{filename}"
        r.add_get(cdn, self._cdn)
        r.add_get("/media" + cdn, self._cdn)
        r.add_get(r"/embed/avatars/{name}", self._avatar)
        r.add_get(r"/avatars/{user_id:\d+}/{name}", self._avatar)
        self.oauth.add_routes(r, API_PREFIX)

    @staticmethod
    def _json(data: Any) -> web.Response:
        return web.Response(status=204) if data is None else json_response(data)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/":  # the gateway websocket logs its frames in gateway_log instead
            return await handler(request)
        self.in_flight += 1  # from the moment its head has arrived until it is answered
        try:
            return await self._answer(request, handler)
        finally:
            self.in_flight -= 1
            await self._notify()

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        rec = request[REC] = await self._record(request)
        response: web.StreamResponse | None
        try:
            delay = max((s for m, p, s in self._slow if m == rec.method and p.fullmatch(rec.path)), default=0)
            if rec.api and delay:
                await asyncio.sleep(delay)
            response = self._injected_fault(rec)
            if response is None:
                self._check_auth(rec)
                response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except web.HTTPException as exc:  # unknown route: Discord answers JSON, not aiohttp's HTML page
            response = ApiError(exc.status, 0, f"{exc.status}: {exc.reason}").response()
        rec.status = response.status
        await self._notify()
        return response

    def _check_auth(self, rec: RecordedRequest) -> None:
        # Interaction callbacks and webhooks are authorised by their token in the path, not by the bot token.
        if not rec.api or rec.path.startswith(("/webhooks/", "/interactions/")) or rec.path == "/gateway":
            return  # GET /gateway needs no token on Discord either
        if self.oauth.authorises(rec):
            return
        if rec.headers.get(hdrs.AUTHORIZATION) != f"Bot {self.token}":
            raise ApiError(401, 0, "401: Unauthorized")

    async def _record(self, request: web.Request) -> RecordedRequest:
        received_at = time.monotonic()
        payload: Any = None
        files: list[UploadedFile] = []
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.filename is not None:
                    ctype = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
                    files.append(
                        UploadedFile(part.name or "", part.filename, ctype, bytes(await part.read()))
                    )
        elif request.body_exists:
            raw = await request.read()
            payload = json.loads(raw) if raw and request.content_type == "application/json" else None
        api = request.path.startswith(API_PREFIX + "/")
        path = request.path.removeprefix(API_PREFIX) if api else request.path
        headers, query = dict(request.headers), dict(request.query)
        rec = RecordedRequest(request.method, path, query, headers, payload, files, received_at, api)
        self.requests.append(rec)
        return rec

    # ------------------------------------------------------------------------------------- simple routes

    def _channel(self, request: web.Request) -> dict[str, Any]:
        channel = self.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        if not self.bot_sees(channel):
            raise ApiError(403, 50001, "Missing Access")
        return channel

    async def _me(self, request: web.Request) -> web.Response:
        if (member := self.oauth.bearer_user(request.headers)) is not None:
            return self._json(self.oauth.me(member))
        return self._json(self.users[self.bot_user_id])

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return self._json(user)

    async def _open_dm(self, request: web.Request) -> web.Response:
        return self._json(self.channels[self.dm_channel(int(request[REC].json["recipient_id"]))])

    async def _get_channel(self, request: web.Request) -> web.Response:
        return self._json(self._channel(request))

    async def _typing(self, request: web.Request) -> web.Response:
        self._channel(request)
        return self._json(None)

    async def _get_member(self, request: web.Request) -> web.Response:
        guild = self.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        uid = int(request.match_info["user_id"])
        if uid not in guild.members:
            raise ApiError(404, 10007, "Unknown Member")
        return self._json(self._member_payload(guild.id, uid))

    def _guild(self, request: web.Request) -> FakeGuild:
        guild = self.guilds.get(int(request.match_info["guild_id"]))
        if guild is None or self.bot_user_id not in guild.members:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    async def _my_guilds(self, request: web.Request) -> web.Response:
        """The bot's servers as partial guilds (GET /users/@me/guilds), oldest id first."""
        if (member := self.oauth.bearer_user(request.headers)) is not None:
            return self._json(self.oauth.my_guilds(member))
        mine = [g for g in self.guilds.values() if self.bot_user_id in g.members]
        return self._json(
            [
                {
                    "id": str(g.id),
                    "name": g.name,
                    "icon": None,
                    "banner": None,
                    "owner": g.owner_id == self.bot_user_id,
                    "permissions": str(self.member_permissions(g.id, self.bot_user_id)),
                    "features": [],
                    "approximate_member_count": len(g.members),
                    "approximate_presence_count": 0,
                }
                for g in sorted(mine, key=lambda g: g.id)
            ]
        )

    async def _get_guild(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}: the server object (no members or channels), as the bot token reads it."""
        payload = self._guild_create_payload(self._guild(request), 0)
        return self._json(_without(payload, "members", "channels", "joined_at", "large", "member_count"))

    async def _guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return self._json([self.channels[cid] for cid in guild.channel_ids])

    async def _guild_roles(self, request: web.Request) -> web.Response:
        return self._json(list(self._guild(request).roles.values()))

    async def _application(self, request: web.Request) -> web.Response:
        bot = self.users[self.bot_user_id]
        return self._json(
            copy.deepcopy(APPLICATION_TEMPLATE)
            | {
                "id": str(self.application_id),
                "name": bot["username"],
                "bot": bot,
                "verify_key": self._secret.hex(),
            }
            | {"owner": self.users[self.owner_id], "approximate_guild_count": len(self.guilds)}
        )

    async def _gateway_info(self, request: web.Request) -> web.Response:
        if not request.path.endswith("/bot"):
            return self._json({"url": self.gateway_url})
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return self._json(
            {"url": self.gateway_url, "shards": self.recommended_shards, "session_start_limit": limit}
        )

    def _command_scope(self, request: web.Request) -> list[dict[str, Any]]:
        if int(request.match_info["app_id"]) != self.application_id:
            raise ApiError(403, 50001, "Missing Access")
        gid = request.match_info.get("guild_id")
        return self.commands.setdefault(int(gid) if gid else None, [])

    async def _get_commands(self, request: web.Request) -> web.Response:
        return self._json(self._command_scope(request))

    async def _put_commands(self, request: web.Request) -> web.Response:
        """Bulk overwrite; Discord keeps a command's id when the same name and type come back."""
        scope, gid = self._command_scope(request), request.match_info.get("guild_id")
        old = {(c["name"], c.get("type", 1)): c for c in scope}
        stored = []
        problems = [p for body in request[REC].json for p in _command_name_problems(body)]
        if problems:
            # Discord refuses the whole bulk overwrite, naming the field (Invalid Form Body).
            return json_response(
                {"code": 50035, "message": "Invalid Form Body", "errors": problems}, status=400
            )
        for body in request[REC].json:
            previous = old.get((body["name"], body.get("type", 1)))
            cmd_id = previous["id"] if previous else str(next(self._ids))
            ids = {"id": cmd_id, "application_id": str(self.application_id), "version": str(next(self._ids))}
            command = copy.deepcopy(COMMAND_TEMPLATE) | body | ids
            stored.append(command | ({"guild_id": gid} if gid else {}))
        scope[:] = stored
        return self._json(stored)

    # ------------------------------------------------------------------------------------------ messages

    def _new_message(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        limit: int,
        interaction: FakeInteraction | None = None,
        extra_flags: int = 0,
    ) -> dict[str, Any]:
        mid = next(self._ids)
        message = copy.deepcopy(MESSAGE_TEMPLATE) | {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.users[self.bot_user_id],
            "timestamp": _now_iso(),
            "tts": bool(body.get("tts", False)),
            "flags": (body.get("flags") or 0) | extra_flags,
        }
        if "nonce" in body:
            message["nonce"] = body["nonce"]
        reference = body.get("message_reference")
        if reference and reference.get("message_id"):  # a reply: Discord fills in the channel (and guild)
            replied_in = str(reference.get("channel_id") or channel_id)
            message["message_reference"] = {
                "type": 0,
                "message_id": str(reference["message_id"]),
                "channel_id": replied_in,
            }
            if reference.get("guild_id"):
                message["message_reference"]["guild_id"] = str(reference["guild_id"])
        if interaction is not None:  # interaction responses are webhook messages by the application
            metadata: dict[str, Any] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self.users[interaction.user_id],
                "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
            }
            if interaction.type == 2:
                metadata["name"] = interaction.payload["data"]["name"]
                message["interaction"] = {k: metadata[k] for k in ("id", "type", "name", "user")}
            if interaction.message_id is not None:
                metadata["interacted_message_id"] = str(interaction.message_id)
            message |= {
                "type": 20 if interaction.type == 2 else 0,  # CHAT_INPUT_COMMAND for slash commands
                "webhook_id": str(self.application_id),
                "application_id": str(self.application_id),
                "interaction_metadata": metadata,
            }
        self._apply(message, body, files, limit=limit, creating=True)
        self.messages[mid] = message
        if not message["flags"] & EPHEMERAL:
            self.channels[channel_id]["last_message_id"] = str(mid)
        return message

    def _apply(
        self,
        message: dict[str, Any],
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        limit: int,
        creating: bool,
    ) -> None:
        """Apply a create/edit body (and uploads) to a stored message, validating like Discord does."""
        content = body.get("content")
        if content is not None and len(str(content)) > MAX_CONTENT:
            raise _too_long("content", MAX_CONTENT)
        _check_embeds(body.get("embeds") or [])
        if len(files) > MAX_FILES or len(body.get("attachments") or []) > MAX_FILES:
            raise _too_long("attachments", MAX_FILES)
        if any(len(f.data) > limit for f in files):
            raise ApiError(413, 40005, "Request entity too large")
        if "content" in body:
            message["content"] = "" if content is None else str(content)
        if "components" in body:
            message["components"] = body["components"] or []
        if "flags" in body and not creating:  # only SUPPRESS_EMBEDS may change on edit; ephemerality stays
            message["flags"] = (message["flags"] & ~4) | ((body["flags"] or 0) & 4)
        ephemeral = bool(message["flags"] & EPHEMERAL)
        message["attachments"] = self._attachments(
            message, body.get("attachments"), files, ephemeral=ephemeral
        )
        if "embeds" in body:
            message["embeds"] = [self._embed(e, message["attachments"]) for e in body["embeds"] or []]
        parts = ("content", "embeds", "attachments", "components", "sticker_ids", "poll")
        thinking = message["flags"] & LOADING  # a type 5 deferral legitimately creates an empty message
        if creating and not thinking and not any(message.get(k) or body.get(k) for k in parts):
            raise ApiError(400, 50006, "Cannot send an empty message")

    def _attachments(
        self,
        message: dict[str, Any],
        spec: list[dict[str, Any]] | None,
        files: list[UploadedFile],
        *,
        ephemeral: bool,
    ) -> list[dict[str, Any]]:
        # discord.py lists new uploads as {"id": n} for the multipart part files[n], kept ones by real id;
        # an edit without an "attachments" list keeps what the message had.
        uploads = {
            int(m[1]) if (m := re.search(r"\[(\d+)\]", f.field)) else i: f for i, f in enumerate(files)
        }
        if spec is None:
            spec = (
                [{"id": index} for index in uploads]
                if files
                else [{"id": a["id"]} for a in message["attachments"]]
            )
        kept = {a["id"]: a for a in message["attachments"]}
        result = []
        for position, entry in enumerate(spec):
            key = str(entry.get("id"))
            if key in kept:
                result.append(kept[key])
            elif not creating_new(key, uploads):
                # An id that is neither one of the message's attachments nor an upload of this call
                # (an attachment of another message, one dropped by an earlier edit): Discord refuses.
                raise _form_error(f"attachments.{position}.id", "ATTACHMENT_NOT_FOUND", "Unknown attachment")
            else:
                upload = uploads[int(key)]
                name = entry.get("filename") or upload.filename
                stored = self._store_blob(int(message["channel_id"]), name, upload.data, ephemeral=ephemeral)
                if entry.get("description"):
                    stored["description"] = entry["description"]
                result.append(stored)
        return result

    def message_attachments(self, message_id: int) -> list[dict[str, Any]]:
        """A stored message's attachments as they are now, in the order Discord shows them."""
        return list(self.messages[message_id]["attachments"])

    def message_files(self, message_id: int) -> list[tuple[str, bytes]]:
        """A stored message's attachments now: each file name with its bytes, in the order shown."""
        return [(a["filename"], self.attachment_bytes(a)) for a in self.message_attachments(message_id)]

    @staticmethod
    def _embed(embed: dict[str, Any], attachments: list[dict[str, Any]]) -> dict[str, Any]:
        embed = {"type": "rich", **embed}
        by_name = {a["filename"]: a for a in attachments}
        for key in ("image", "thumbnail"):  # Discord swaps attachment://name for the uploaded file's URL
            url = (embed.get(key) or {}).get("url", "")
            if url.startswith("attachment://") and (found := by_name.get(url.removeprefix("attachment://"))):
                embed[key] = {k: found[k] for k in ("url", "proxy_url", "width", "height") if k in found}
        return embed

    async def _announce(self, event: str, message: dict[str, Any]) -> None:
        """Wake waiters, then send MESSAGE_* to clients with the intent, as Discord echoes the bot's posts."""
        await self._notify()
        if message["flags"] & EPHEMERAL:
            return
        channel = self.channels[int(message["channel_id"])]
        if not self.bot_sees(channel):
            return  # no gateway events from servers and group DMs the bot is not in
        data, intent = dict(message), INTENT_DIRECT_MESSAGES
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        if guild_id is not None:
            member = _without(self._member_payload(int(channel["guild_id"]), self.bot_user_id), "user")
            data |= {"guild_id": channel["guild_id"], "member": member}
            intent = INTENT_GUILD_MESSAGES
        if event == "MESSAGE_DELETE":
            data = {k: data[k] for k in ("id", "channel_id", "guild_id") if k in data}
        for session in list(self._sessions):
            if (
                session.ready
                and session.intents & intent
                and not session.ws.closed
                and session.owns(guild_id)
            ):
                with contextlib.suppress(ConnectionResetError):  # a client closing right now misses it
                    await self._dispatch(session, event, data)

    def _upload_limit(self, channel: dict[str, Any]) -> int:
        return (
            self.guilds[int(channel["guild_id"])].filesize_limit
            if "guild_id" in channel
            else FILESIZE_LIMITS[0]
        )

    async def _post_message(self, request: web.Request) -> web.Response:
        channel, rec = self._channel(request), request[REC]
        body = rec.json or {}
        if body.get("enforce_nonce") and body.get("nonce") is not None:
            # Discord returns the earlier message instead of creating a second one with the same nonce
            # from the same author in the last few minutes.
            for earlier in self.messages.values():
                same_place = earlier["channel_id"] == channel["id"] and earlier.get("nonce") == body["nonce"]
                if same_place and earlier["author"]["id"] == str(self.bot_user_id):
                    return self._json(earlier)
        message = self._new_message(
            int(channel["id"]), rec.json or {}, rec.files, limit=self._upload_limit(channel)
        )
        await self._announce("MESSAGE_CREATE", message)
        return self._json(message)

    async def _channel_history(self, request: web.Request) -> web.Response:
        """GET /channels/{id}/messages: newest first, at most `limit` (1-100, default 50), the ones
        just before `before` or just after `after` (Discord's order and windows)."""
        channel, query = self._channel(request), request.query
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 100:
            raise _form_error("limit", "NUMBER_TYPE_MAX")
        listed = sorted(
            (
                m
                for m in self.messages.values()
                if m["channel_id"] == channel["id"] and not m["flags"] & EPHEMERAL
            ),
            key=lambda m: int(m["id"]),
        )
        if "after" in query:
            listed = [m for m in listed if int(m["id"]) > int(query["after"])][:limit]
        else:
            if "before" in query:
                listed = [m for m in listed if int(m["id"]) < int(query["before"])]
            listed = listed[-limit:]
        return self._json([self._as_read(m) for m in reversed(listed)])

    async def _channel_message(self, request: web.Request) -> web.Response:
        channel, message = self._channel(request), self.messages.get(int(request.match_info["message_id"]))
        if message is None or message["channel_id"] != channel["id"] or message["flags"] & EPHEMERAL:
            raise ApiError(404, 10008, "Unknown Message")
        return await self._message_op(request, message, self._upload_limit(channel))

    async def _message_op(self, request: web.Request, message: dict[str, Any], limit: int) -> web.Response:
        """GET / PATCH / DELETE of one stored message, shared by channel and webhook routes."""
        rec = request[REC]
        if request.method == "GET":
            return self._json(self._as_read(message))
        if request.method == "PATCH":
            if message["author"]["id"] != str(self.bot_user_id):
                raise ApiError(403, 50005, "Cannot edit a message authored by another user")
            message["flags"] &= ~LOADING  # editing a deferred "thinking" message resolves it
            self._apply(message, rec.json or {}, rec.files, limit=limit, creating=False)
            message["edited_timestamp"] = _now_iso()
            await self._announce("MESSAGE_UPDATE", message)
            return self._json(message)
        if request.method == "DELETE":
            del self.messages[int(message["id"])]
            await self._announce("MESSAGE_DELETE", message)
            return self._json(None)
        raise ApiError(405, 0, "405: Method Not Allowed")

    # ----------------------------------------------------------------------------- interaction responses

    async def _callback(self, request: web.Request) -> web.Response:
        rec = request[REC]
        inter = self.interactions.get(int(request.match_info["interaction_id"]))
        if inter is None or inter.token != request.match_info["token"] or inter.expired:
            raise ApiError(404, 10062, "Unknown interaction")
        if self.callback_deadline is not None and rec.received_at - inter.sent_at > self.callback_deadline:
            raise ApiError(404, 10062, "Unknown interaction")
        if inter.response_type is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        body = rec.json or {}
        rtype, data = int(body["type"]), body.get("data") or {}
        if rtype not in {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}[inter.type]:
            raise _form_error("type", "INTERACTION_RESPONSE_TYPE_INVALID")
        limit = inter.attachment_size_limit
        message: dict[str, Any] | None = None
        if rtype in (4, 5):  # CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
            body_data = data if rtype == 4 else {"flags": data.get("flags", 0)}
            extra = LOADING if rtype == 5 else 0
            message = self._new_message(
                inter.channel_id, body_data, rec.files, limit=limit, interaction=inter, extra_flags=extra
            )
            await self._announce("MESSAGE_CREATE", message)
        elif rtype == 7 and inter.message_id is not None:  # UPDATE_MESSAGE edits the component's message
            message = self.messages[inter.message_id]
            self._apply(message, data, rec.files, limit=limit, creating=False)
            message["edited_timestamp"] = _now_iso()
            await self._announce("MESSAGE_UPDATE", message)
        if rtype in (4, 5, 6, 7):  # @original: the new message, or the component's message for 6/7
            inter.original_message_id = int(message["id"]) if message else inter.message_id
        inter.response_type, inter.response = rtype, body
        result: dict[str, Any] = {"interaction": {"id": str(inter.id), "type": inter.type}}
        if message is not None:
            result["interaction"] |= {
                "response_message_id": message["id"],
                "response_message_loading": rtype == 5,
                "response_message_ephemeral": bool(message["flags"] & EPHEMERAL),
            }
            result["resource"] = {"type": rtype, "message": message}
        # discord.py always asks ?with_response=1 and builds InteractionCallbackResponse from this body.
        return self._json(result if rec.query.get("with_response") in ("1", "true") else None)

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction:
        if int(request.match_info["app_id"]) != self.application_id:
            raise ApiError(404, 10015, "Unknown Webhook")
        inter = self._by_token.get(request.match_info["token"])
        if inter is None or inter.expired:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return inter

    async def _webhook_message(self, request: web.Request) -> web.Response:
        inter = self._webhook_interaction(request)
        raw = request.match_info["message_id"]
        mid = inter.original_message_id if raw == "@original" else int(raw)
        if (
            mid is None
            or mid not in {inter.original_message_id, *inter.followup_ids}
            or mid not in self.messages
        ):
            raise ApiError(404, 10008, "Unknown Message")
        return await self._message_op(request, self.messages[mid], inter.attachment_size_limit)

    async def _followup(self, request: web.Request) -> web.Response:
        inter, rec = self._webhook_interaction(request), request[REC]
        if inter.response_type is None:
            raise ApiError(404, 10015, "Unknown Webhook")  # follow-ups need an acknowledged interaction
        if inter.followup_limit is not None and inter.followups_sent >= inter.followup_limit:
            raise ApiError(400, 40094, "This interaction has hit the maximum number of follow up messages")
        inter.followups_sent += 1
        original = self.messages.get(inter.original_message_id or 0)
        limit = inter.attachment_size_limit
        if original is not None and original["flags"] & LOADING:
            # Discord turns the first follow-up after a type 5 deferral into the deferred message itself.
            original["flags"] &= ~LOADING
            self._apply(original, rec.json or {}, rec.files, limit=limit, creating=False)
            message = original
            await self._announce("MESSAGE_UPDATE", message)
        else:
            message = self._new_message(
                inter.channel_id, rec.json or {}, rec.files, limit=limit, interaction=inter
            )
            inter.followup_ids.append(int(message["id"]))
            await self._announce("MESSAGE_CREATE", message)
        return self._json(message if rec.query.get("wait") in ("1", "true", "True") else None)


@contextlib.asynccontextmanager
async def running_fake(**kwargs: Any) -> AsyncIterator[FakeDiscord]:
    """Start a FakeDiscord (constructor kwargs), point discord.py at it, and undo both afterwards."""
    fake = FakeDiscord(**kwargs)
    await fake.start()
    try:
        with fake.patch_discord():
            yield fake
    finally:
        await fake.stop()


@contextlib.asynccontextmanager
async def run_client(
    fake: FakeDiscord, client: discord.Client, timeout: float = 5.0
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``client.start(fake.token)`` until the client has processed READY and every GUILD_CREATE
    (on each of its shards' connections).

    Does not wait for ``on_ready`` (discord.py holds it back ``guild_ready_timeout``, 2 s by default).
    Closes the client on exit; a login or connect failure is raised from here.
    """
    newer_than = fake.sessions_started
    shards = 1
    if isinstance(client, discord.AutoShardedClient):  # one connection per shard it runs
        shards = len(client.shard_ids) if client.shard_ids else client.shard_count or fake.recommended_shards
    task = asyncio.create_task(client.start(fake.token))
    try:
        connected = asyncio.create_task(
            fake.wait_connected(newer_than=newer_than, timeout=timeout, sessions=shards)
        )
        await asyncio.wait({task, connected}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            connected.cancel()
            await task  # raises the login/connect error
            raise RuntimeError("client stopped before connecting")
        await connected
        await fake.sync_gateway(timeout)
        yield task
    finally:
        await client.close()
        await asyncio.wait_for(task, timeout)
