"""The few Discord REST calls the web gallery makes with the bot's token (DISCORD_TOKEN), over plain
aiohttp (the gallery never imports discord.py): is someone a member of a server and with which roles,
the attachment links of a posted message, fresh links for expired ones (POST /attachments/refresh-urls),
an attachment's bytes, and deleting a posted message. The token stays in this module's headers: it
never reaches a page, a log line or the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
MANAGE_MESSAGES = 1 << 13


class DiscordUnavailable(Exception):
    """Discord could not be asked (unreachable, rate limited, refused the token); for logs only."""


@dataclass(frozen=True)
class Attachment:
    url: str
    content_type: str


class DiscordRest:
    def __init__(self, session: aiohttp.ClientSession, api_base: str, token: str, max_bytes: int) -> None:
        self._session = session
        self._api = api_base.rstrip("/")
        self._headers = {"Authorization": f"Bot {token}"}
        self.max_bytes = max_bytes

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        try:
            async with self._session.request(
                method, self._api + path, headers=self._headers, **kwargs
            ) as response:
                if response.status == 204:
                    return 204, None
                body = await response.json(content_type=None) if response.status < 500 else None
                return response.status, body
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise DiscordUnavailable(f"{method} {path.split('/')[1]}: {type(error).__name__}") from None

    async def member_roles(self, guild_id: int, user_id: int) -> list[int] | None:
        """The member's roles in the server; None when they are not (or no longer) a member."""
        status, body = await self._call("GET", f"/guilds/{guild_id}/members/{user_id}")
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise DiscordUnavailable(f"member look-up: HTTP {status}")
        return [int(role) for role in body.get("roles") or []]

    async def permissions(self, guild_id: int, roles: list[int]) -> int:
        """Server-wide permissions of a member with these roles (@everyone's included)."""
        status, body = await self._call("GET", f"/guilds/{guild_id}/roles")
        if status != 200 or not isinstance(body, list):
            raise DiscordUnavailable(f"roles look-up: HTTP {status}")
        held = {guild_id, *roles}
        value = 0
        for role in body:
            if int(role["id"]) in held:
                value |= int(role.get("permissions") or 0)
        return value

    async def user_name(self, user_id: int) -> str | None:
        """A user's display name (their global name, else their username)."""
        status, body = await self._call("GET", f"/users/{user_id}")
        if status != 200 or not isinstance(body, dict):
            return None
        name = body.get("global_name") or body.get("username")
        return str(name)[:100] if name else None

    async def attachments(self, channel_id: int, message_id: int) -> list[Attachment] | None:
        """A posted message's attachments, with freshly signed links; None when it is gone."""
        status, body = await self._call("GET", f"/channels/{channel_id}/messages/{message_id}")
        if status in (403, 404):
            return None
        if status != 200 or not isinstance(body, dict):
            raise DiscordUnavailable(f"message look-up: HTTP {status}")
        return [
            Attachment(str(a["url"]), str(a.get("content_type") or ""))
            for a in body.get("attachments") or []
            if isinstance(a, dict) and a.get("url")
        ]

    async def refresh(self, urls: list[str]) -> dict[str, str]:
        """Freshly signed links for attachment links that may have expired: original -> refreshed."""
        status, body = await self._call("POST", "/attachments/refresh-urls", json={"attachment_urls": urls})
        if status != 200 or not isinstance(body, dict):
            raise DiscordUnavailable(f"link refresh: HTTP {status}")
        return {
            str(item["original"]): str(item["refreshed"])
            for item in body.get("refreshed_urls") or []
            if isinstance(item, dict) and item.get("original") and item.get("refreshed")
        }

    async def download(self, url: str) -> tuple[bytes, str] | None:
        """An attachment's bytes and type (at most max_bytes); None when the link does not lead to one."""
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
