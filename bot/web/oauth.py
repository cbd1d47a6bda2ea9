"""Sign-in with Discord: OAuth2's authorization code flow (scopes `identify guilds`).

The browser goes to the authorize page (DISCORD_AUTHORIZE_URL) with a random `state` kept in its
session; Discord sends it back to /oauth/callback with a code, which is exchanged for an access token
at DISCORD_API_BASE like every other Discord call. The token is used at once for the member's user
and servers and then dropped: the session keeps only what the pages need."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

SCOPES = "identify guilds"
CALLBACK_PATH = "/oauth/callback"


class OAuthError(Exception):
    """Discord refused the sign-in or could not be reached; the text is for logs, never a page."""


@dataclass(frozen=True)
class DiscordUser:
    id: int
    name: str
    locale: str | None
    guilds: dict[int, str]  # the member's servers: id -> name
    permissions: dict[int, int]  # the member's permissions in each (Discord's `permissions` field)


def new_state() -> str:
    return secrets.token_urlsafe(24)


class DiscordOAuth:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_base: str,
        authorize_url: str,
        client_id: int,
        client_secret: str,
        redirect_uri: str,
    ) -> None:
        self._session = session
        self._api = api_base.rstrip("/")
        self._authorize = authorize_url
        self._client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri

    def authorize_url(self, state: str) -> str:
        query = urlencode(
            {
                "client_id": str(self._client_id),
                "response_type": "code",
                "redirect_uri": self.redirect_uri,
                "scope": SCOPES,
                "state": state,
                "prompt": "none",
            }
        )
        return f"{self._authorize}?{query}"

    async def _json(self, response: aiohttp.ClientResponse, what: str) -> Any:
        if response.status != 200:
            raise OAuthError(f"{what}: HTTP {response.status}")
        try:
            return await response.json()
        except (aiohttp.ContentTypeError, ValueError):
            raise OAuthError(f"{what}: not JSON") from None

    async def sign_in(self, code: str) -> DiscordUser:
        """Exchange the code and read who signed in and their servers."""
        try:
            async with self._session.post(
                f"{self._api}/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.redirect_uri,
                },
                headers={
                    "Authorization": aiohttp.encode_basic_auth(str(self._client_id), self._client_secret)
                },
            ) as response:
                token = await self._json(response, "token exchange")
            access = token.get("access_token") if isinstance(token, dict) else None
            if not isinstance(access, str) or not access:
                raise OAuthError("token exchange: no access token")
            headers = {"Authorization": f"Bearer {access}"}
            async with self._session.get(f"{self._api}/users/@me", headers=headers) as response:
                user = await self._json(response, "user")
            async with self._session.get(f"{self._api}/users/@me/guilds", headers=headers) as response:
                guilds = await self._json(response, "guilds")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise OAuthError(f"Discord unreachable: {type(error).__name__}") from None
        try:
            name = user.get("global_name") or user["username"]
            return DiscordUser(
                id=int(user["id"]),
                name=str(name),
                locale=user.get("locale"),
                guilds={int(g["id"]): str(g.get("name") or g["id"]) for g in guilds},
                permissions={int(g["id"]): int(g.get("permissions") or 0) for g in guilds},
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise OAuthError("unexpected answer") from None
