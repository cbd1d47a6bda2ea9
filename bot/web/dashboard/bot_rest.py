"""The few Discord REST calls the dashboard makes with the bot's token: a server (its owner, roles and
language), one member (their roles and name), a user's name, the server's text channels, and a post in
the mod-log channel. The web server may run without the gateway (`python -m bot web`), so it asks
Discord itself rather than a client's cache.

The token goes in the Authorization header of these calls only: it is never logged, never put in an
exception's text, and no page or answer carries it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

TEXT_CHANNEL_TYPES = (0, 5)  # text and announcement channels: where a mod-log can be posted
NO_PINGS: dict[str, list[str]] = {"parse": []}
GUILD_CACHE_SECONDS = 60.0  # names and roles shown on pages; a permission check reads afresh
NAME_CACHE_SECONDS = 600.0
MAX_CACHED = 2000
RATE_LIMIT_WAIT = 5.0  # at most this long for one 429's retry_after; longer is "Discord is busy"


class DiscordUnavailable(Exception):
    """Discord did not answer usefully (network, 5xx, a long rate limit). Text for logs only."""


@dataclass(frozen=True)
class RoleInfo:
    id: int
    name: str
    permissions: int
    position: int
    managed: bool


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


@dataclass(frozen=True)
class MemberInfo:
    user_id: int
    name: str
    role_ids: tuple[int, ...]


def _name(user: dict[str, Any], nick: object = None) -> str:
    return str(nick or user.get("global_name") or user.get("username") or user.get("id"))[:100]


class BotRest:
    def __init__(self, session: aiohttp.ClientSession, api_base: str, token: str | None) -> None:
        self._session = session
        self._api = api_base.rstrip("/")
        self._token = token
        self._guilds: dict[int, tuple[float, GuildInfo | None]] = {}
        self._names: dict[tuple[int, int], tuple[float, str]] = {}
        self._members: dict[tuple[int, int], tuple[float, MemberInfo | None]] = {}

    @property
    def usable(self) -> bool:
        """The dashboard needs the bot's token (DISCORD_TOKEN) to check roles with Discord."""
        return bool(self._token)

    async def _call(self, method: str, path: str, payload: Any = None) -> Any:
        """The JSON answer; None for 403 and 404 (not there, or not the bot's to see)."""
        if not self._token:
            raise DiscordUnavailable("no bot token")
        headers = {"Authorization": f"Bot {self._token}"}
        for _ in range(2):
            try:
                async with self._session.request(
                    method, self._api + path, json=payload, headers=headers
                ) as response:
                    if response.status in (403, 404):
                        return None
                    if response.status == 429:
                        wait = float((await response.json(content_type=None) or {}).get("retry_after", 1))
                        if wait > RATE_LIMIT_WAIT:
                            raise DiscordUnavailable(f"{method} {path}: rate limited for {wait:.0f} s")
                        await asyncio.sleep(wait)
                        continue
                    if response.status >= 300:
                        raise DiscordUnavailable(f"{method} {path}: HTTP {response.status}")
                    return await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                raise DiscordUnavailable(f"{method} {path}: {type(error).__name__}") from None
        raise DiscordUnavailable(f"{method} {path}: still rate limited")

    def _forget_old(self, cache: dict[Any, Any]) -> None:
        while len(cache) > MAX_CACHED:
            cache.pop(next(iter(cache)))

    async def guild(self, guild_id: int, *, fresh: bool = False) -> GuildInfo | None:
        """The server as the bot sees it, or None when the bot is not in it."""
        now = time.monotonic()
        cached = self._guilds.get(guild_id)
        if cached is not None and not fresh and now - cached[0] < GUILD_CACHE_SECONDS:
            return cached[1]
        data = await self._call("GET", f"/guilds/{guild_id}")
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
        self._guilds[guild_id] = (now, info)
        self._forget_old(self._guilds)
        return info

    async def member(self, guild_id: int, user_id: int) -> MemberInfo | None:
        data = await self._call("GET", f"/guilds/{guild_id}/members/{user_id}")
        if not isinstance(data, dict):
            return None
        name = _name(data.get("user") or {}, data.get("nick"))
        self._names[(guild_id, user_id)] = (time.monotonic(), name)
        self._forget_old(self._names)
        return MemberInfo(user_id, name, tuple(int(r) for r in data.get("roles", [])))

    async def member_cached(self, guild_id: int, user_id: int) -> MemberInfo | None:
        """A member for a chart (their name and roles), read again after a few minutes; never for a
        permission check."""
        cached = self._members.get((guild_id, user_id))
        if cached is not None and time.monotonic() - cached[0] < NAME_CACHE_SECONDS:
            return cached[1]
        found = await self.member(guild_id, user_id)
        self._members[(guild_id, user_id)] = (time.monotonic(), found)
        self._forget_old(self._members)
        return found

    async def user_name(self, user_id: int) -> str | None:
        data = await self._call("GET", f"/users/{user_id}")
        return _name(data) if isinstance(data, dict) else None

    async def member_name(self, guild_id: int, user_id: int) -> str:
        """A member's name for a chart (cached a few minutes); their id if Discord does not know it."""
        cached = self._names.get((guild_id, user_id))
        if cached is not None and time.monotonic() - cached[0] < NAME_CACHE_SECONDS:
            return cached[1]
        found = await self.member(guild_id, user_id)
        if found is not None:
            return found.name
        name = await self.user_name(user_id) or str(user_id)
        self._names[(guild_id, user_id)] = (time.monotonic(), name)
        return name

    async def text_channels(self, guild_id: int) -> list[tuple[int, str]]:
        data = await self._call("GET", f"/guilds/{guild_id}/channels")
        if not isinstance(data, list):
            return []
        listed = [c for c in data if isinstance(c, dict) and c.get("type") in TEXT_CHANNEL_TYPES]
        listed.sort(key=lambda c: (int(c.get("position", 0)), int(c["id"])))
        return [(int(c["id"]), str(c.get("name", c["id"]))[:100]) for c in listed]

    async def post(self, channel_id: int, text: str) -> bool:
        """A message in a channel, pinging no one; False when the bot may not post there."""
        try:
            sent = await self._call(
                "POST", f"/channels/{channel_id}/messages", {"content": text, "allowed_mentions": NO_PINGS}
            )
        except DiscordUnavailable as error:
            log.warning("could not post in channel %s: %s", channel_id, error)
            return False
        return sent is not None
