"""The web server's one Discord REST client: every call the gallery and the dashboard make with the
bot's token (DISCORD_TOKEN), over plain aiohttp (the web package never imports discord.py).

The gallery asks whether someone is a member of a server (and a moderator there), a maker's name, a
posted message's attachment links, fresh links for expired ones (POST /attachments/refresh-urls), an
attachment's bytes, and deletes a posted message. The dashboard asks for a server (its owner, roles and
language), one member, a user's name, the server's text channels, and posts in the mod-log channel.
The web server may run without the gateway (`python -m bot web`), so it asks Discord itself rather than
a client's cache.

One way to fail: a rate limit longer than RATE_LIMIT_WAIT, a 5xx, a timeout, a network error or an
answer that is not JSON raise `DiscordUnavailable`, whose text (for logs) names the call and the cause,
never the token; pages turn it into a friendly "Discord is not answering". A 403 or 404 is an answer
(not there, or not the bot's to see), which each call reads in its own way.

One cache policy: what pages show (a server's name and roles, members' and users' names) is kept for a
while; whether someone may do something is read afresh (`member`, `guild(fresh=True)`), except the
gallery's membership, which a page of thirty pictures would otherwise ask thirty times (ACCESS_SECONDS,
one question at a time per member and server).

The token goes in the Authorization header of the calls to DISCORD_API_BASE only: never to an
attachment's link, never in a log line, an exception's text, a page or the database."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp

log = logging.getLogger(__name__)

ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
MANAGE_MESSAGES = 1 << 13
TEXT_CHANNEL_TYPES = (0, 5)  # text and announcement channels: where a mod-log can be posted
NO_PINGS: dict[str, list[str]] = {"parse": []}
RATE_LIMIT_WAIT = 5.0  # at most this long for one 429's retry_after; longer is "Discord is busy"
GUILD_SECONDS = 60.0  # a server's name and roles, as pages show them
NAME_SECONDS = 600.0  # members' and users' names (and roles) on pages and charts
ACCESS_SECONDS = 60.0  # the gallery's membership answer, shared by the pictures of one page
MAX_CACHED = 10_000

K = TypeVar("K")
V = TypeVar("V")


class DiscordUnavailable(Exception):
    """Discord did not answer usefully (network, timeout, 5xx, a long rate limit, no token). The text
    is for logs: it names the call and the cause, never the token."""


class _Recent(Generic[K, V]):
    """Answers kept for `seconds`, the oldest forgotten past MAX_CACHED."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._kept: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        found = self._kept.get(key)
        if found is None or time.monotonic() - found[0] >= self.seconds:
            return False, None
        return True, found[1]

    def put(self, key: K, value: V) -> None:
        self._kept[key] = (time.monotonic(), value)
        self._kept.move_to_end(key)
        while len(self._kept) > MAX_CACHED:
            self._kept.popitem(last=False)


@dataclass(frozen=True)
class RoleInfo:
    id: int
    name: str
    permissions: int
    position: int
    managed: bool


@dataclass(frozen=True)
class MemberInfo:
    user_id: int
    name: str
    role_ids: tuple[int, ...]


@dataclass(frozen=True)
class GuildInfo:
    id: int
    name: str
    owner_id: int
    locale: str
    roles: dict[int, RoleInfo]

    def listed_roles(self) -> list[RoleInfo]:
        """Roles a moderator may give a limit: not @everyone (its id is the server's), not a bot's."""
        chosen = [r for r in self.roles.values() if r.id != self.id and not r.managed]
        return sorted(chosen, key=lambda r: -r.position)

    def permissions_of(self, member: MemberInfo) -> int:
        """Server-wide permissions: @everyone's (the role whose id is the server's) and the member's
        roles'. The owner holds every permission whatever their roles."""
        if member.user_id == self.owner_id:
            return ADMINISTRATOR | MANAGE_GUILD | MANAGE_MESSAGES
        everyone = self.roles.get(self.id)
        permissions = everyone.permissions if everyone else 0
        for role_id in member.role_ids:
            role = self.roles.get(role_id)
            if role is not None:
                permissions |= role.permissions
        return permissions


@dataclass(frozen=True)
class Attachment:
    url: str
    content_type: str


def _name(user: dict[str, Any], nick: object = None) -> str:
    return str(nick or user.get("global_name") or user.get("username") or user.get("id"))[:100]


def _retry_after(body: object) -> float:
    """Seconds a 429 asks to wait (its JSON's retry_after); a second when it does not say."""
    wait = body.get("retry_after", 1) if isinstance(body, dict) else 1
    return float(wait) if isinstance(wait, int | float | str) else 1.0


def _authorization(token: str | None) -> dict[str, str] | None:
    """The one place the token is used: the header of calls to Discord's API."""
    return {"Authorization": f"Bot {token}"} if token else None


class DiscordRest:
    def __init__(
        self, session: aiohttp.ClientSession, api_base: str, token: str | None, max_bytes: int
    ) -> None:
        self._session = session
        self._api = api_base.rstrip("/")
        self._headers = _authorization(token)
        self.max_bytes = max_bytes
        self._guilds: _Recent[int, GuildInfo | None] = _Recent(GUILD_SECONDS)
        self._names: _Recent[tuple[int, int], str] = _Recent(NAME_SECONDS)
        self._members: _Recent[tuple[int, int], MemberInfo | None] = _Recent(NAME_SECONDS)
        self._users: _Recent[int, str | None] = _Recent(NAME_SECONDS)
        self._access: _Recent[tuple[int, int], tuple[list[int] | None, int]] = _Recent(ACCESS_SECONDS)
        self._asking: dict[tuple[int, int], asyncio.Lock] = {}

    @property
    def usable(self) -> bool:
        """Whether there is a bot token to ask with: without one (a web process given no DISCORD_TOKEN)
        the gallery trusts sign-in's answers and the dashboard is closed."""
        return self._headers is not None

    async def _call(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        """Discord's status and JSON answer (None for 204), after at most one short rate-limit wait."""
        if self._headers is None:
            raise DiscordUnavailable("no bot token")
        where = f"{method} {path}"
        for _ in range(2):
            try:
                async with self._session.request(
                    method, self._api + path, json=payload, headers=self._headers
                ) as response:
                    if response.status == 429:
                        wait = _retry_after(await response.json(content_type=None))
                        if wait > RATE_LIMIT_WAIT:
                            raise DiscordUnavailable(f"{where}: rate limited for {wait:.0f} s")
                        await asyncio.sleep(wait)
                        continue
                    if response.status >= 500:
                        raise DiscordUnavailable(f"{where}: HTTP {response.status}")
                    if response.status == 204:
                        return 204, None
                    return response.status, await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                # The error's own text may quote the request: only its kind is told.
                raise DiscordUnavailable(f"{where}: {type(error).__name__}") from None
        raise DiscordUnavailable(f"{where}: still rate limited")

    async def _found(self, method: str, path: str, payload: Any = None) -> Any:
        """The JSON answer; None for 403 and 404; any other refusal is DiscordUnavailable."""
        status, body = await self._call(method, path, payload)
        if status in (403, 404):
            return None
        if status >= 300:
            raise DiscordUnavailable(f"{method} {path}: HTTP {status}")
        return body

    # -- servers and members ------------------------------------------------------------------------

    async def guild(self, guild_id: int, *, fresh: bool = False) -> GuildInfo | None:
        """The server as the bot sees it, or None when the bot is not in it. Kept GUILD_SECONDS for
        pages; `fresh` before a change."""
        if not fresh:
            known, cached = self._guilds.get(guild_id)
            if known:
                return cached
        data = await self._found("GET", f"/guilds/{guild_id}")
        info: GuildInfo | None = None
        if isinstance(data, dict):
            roles = {
                int(r["id"]): RoleInfo(
                    int(r["id"]),
                    str(r.get("name", ""))[:100],
                    int(r.get("permissions", 0)),
                    int(r.get("position", 0)),
                    bool(r.get("managed")),
                )
                for r in data.get("roles", [])
            }
            info = GuildInfo(
                guild_id,
                str(data.get("name", guild_id))[:100],
                int(data.get("owner_id", 0)),
                str(data.get("preferred_locale") or "en-US"),
                roles,
            )
        self._guilds.put(guild_id, info)
        return info

    async def member(self, guild_id: int, user_id: int) -> MemberInfo | None:
        """One member, read afresh (for a permission check); None when they are not in the server."""
        data = await self._found("GET", f"/guilds/{guild_id}/members/{user_id}")
        found: MemberInfo | None = None
        if isinstance(data, dict):
            name = _name(data.get("user") or {}, data.get("nick"))
            found = MemberInfo(user_id, name, tuple(int(r) for r in data.get("roles") or []))
            self._names.put((guild_id, user_id), name)
        self._members.put((guild_id, user_id), found)  # the newest answer, for pages and charts
        return found

    async def member_cached(self, guild_id: int, user_id: int) -> MemberInfo | None:
        """A member for a chart (their name and roles), read again after NAME_SECONDS; never for a
        permission check."""
        known, cached = self._members.get((guild_id, user_id))
        if known:
            return cached
        return await self.member(guild_id, user_id)

    async def member_access(self, guild_id: int, user_id: int) -> tuple[list[int] | None, int]:
        """For the gallery: the member's roles (None when not a member) and server-wide permissions,
        kept ACCESS_SECONDS and asked once at a time per member and server."""
        key = (guild_id, user_id)
        lock = self._asking.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                known, cached = self._access.get(key)
                if known and cached is not None:
                    return cached
                member = await self.member(guild_id, user_id)
                # The roles' permissions read with the member, as a permission check should be.
                guild = await self.guild(guild_id, fresh=True) if member is not None else None
                answer: tuple[list[int] | None, int] = (
                    (list(member.role_ids), guild.permissions_of(member))
                    if member is not None and guild is not None
                    else (None, 0)
                )
                self._access.put(key, answer)
                return answer
        finally:
            if not lock.locked():
                self._asking.pop(key, None)

    async def user_name(self, user_id: int) -> str | None:
        """A user's display name (their global name, else their username), kept NAME_SECONDS; None
        when Discord does not know them."""
        known, cached = self._users.get(user_id)
        if known:
            return cached
        data = await self._found("GET", f"/users/{user_id}")
        name = _name(data) if isinstance(data, dict) else None
        self._users.put(user_id, name)
        return name

    async def member_name(self, guild_id: int, user_id: int) -> str:
        """A member's name for a page or chart (kept NAME_SECONDS); their id if Discord does not know it."""
        known, cached = self._names.get((guild_id, user_id))
        if known and cached is not None:
            return cached
        found = await self.member(guild_id, user_id)
        if found is not None:
            return found.name
        name = await self.user_name(user_id) or str(user_id)
        self._names.put((guild_id, user_id), name)
        return name

    async def text_channels(self, guild_id: int) -> list[tuple[int, str]]:
        data = await self._found("GET", f"/guilds/{guild_id}/channels")
        if not isinstance(data, list):
            return []
        listed = [c for c in data if isinstance(c, dict) and c.get("type") in TEXT_CHANNEL_TYPES]
        listed.sort(key=lambda c: (int(c.get("position", 0)), int(c["id"])))
        return [(int(c["id"]), str(c.get("name", c["id"]))[:100]) for c in listed]

    # -- messages -----------------------------------------------------------------------------------

    async def post(self, channel_id: int, text: str) -> bool:
        """A message in a channel, pinging no one; False when it could not be posted (logged)."""
        try:
            sent = await self._found(
                "POST", f"/channels/{channel_id}/messages", {"content": text, "allowed_mentions": NO_PINGS}
            )
        except DiscordUnavailable as error:
            log.warning("could not post in channel %s: %s", channel_id, error)
            return False
        return sent is not None

    async def attachments(self, channel_id: int, message_id: int) -> list[Attachment] | None:
        """A posted message's attachments, with freshly signed links; None when it is gone."""
        data = await self._found("GET", f"/channels/{channel_id}/messages/{message_id}")
        if not isinstance(data, dict):
            return None
        return [
            Attachment(str(a["url"]), str(a.get("content_type") or ""))
            for a in data.get("attachments") or []
            if isinstance(a, dict) and a.get("url")
        ]

    async def refresh(self, urls: list[str]) -> dict[str, str]:
        """Freshly signed links for attachment links that may have expired: original -> refreshed."""
        status, body = await self._call("POST", "/attachments/refresh-urls", {"attachment_urls": urls})
        if status != 200 or not isinstance(body, dict):
            raise DiscordUnavailable(f"link refresh: HTTP {status}")
        return {
            str(item["original"]): str(item["refreshed"])
            for item in body.get("refreshed_urls") or []
            if isinstance(item, dict) and item.get("original") and item.get("refreshed")
        }

    async def download(self, url: str) -> tuple[bytes, str] | None:
        """An attachment's bytes and type (at most max_bytes); None when the link does not lead to one.
        Discord's CDN needs no token, and gets none."""
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    return None
                body = await response.content.read(self.max_bytes + 1)
                kind = response.headers.get("Content-Type", "").split(";")[0]
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DiscordUnavailable(f"attachment download: {type(error).__name__}") from None
        if len(body) > self.max_bytes:
            return None
        return body, kind

    async def delete_message(self, channel_id: int, message_id: int) -> bool:
        """Delete a message the bot posted; True when it is gone (already gone included)."""
        status, _ = await self._call("DELETE", f"/channels/{channel_id}/messages/{message_id}")
        if status in (200, 204, 404):
            return True
        log.warning("could not delete message %s: HTTP %s", message_id, status)
        return False
