"""The fake Discord's OAuth2 (sign-in for the web gallery): the authorize page, the token exchange and
the user's own look-ups with a Bearer token, on the same 127.0.0.1 server as the rest of the fake.

The authorize page approves at once, as Discord does for a member who authorized the app before, and
signs in `signed_in_as` (a user of the fake's world); `refuse_next` makes it answer as if the member
pressed Cancel. Codes are single-use and bound to the redirect URI they were issued for; the token
endpoint checks the client's id and secret (HTTP Basic, as the bot sends them)."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import hdrs, web

if TYPE_CHECKING:
    from testing.fake_discord import FakeDiscord, RecordedRequest

AUTHORIZE_PATH = "/oauth2/authorize"


@dataclass
class _Grant:
    user_id: int
    redirect_uri: str


@dataclass
class FakeOAuth:
    fake: FakeDiscord
    client_secret: str = "fake-client-secret"
    signed_in_as: int | None = None  # None: the fake's plain member
    refuse_next: bool = False
    locales: dict[int, str] = field(default_factory=dict)  # a user's Discord locale (default en-US)
    codes: dict[str, _Grant] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)  # access token -> user id
    authorizations: int = 0  # authorize pages served

    @property
    def client_id(self) -> int:
        return self.fake.application_id

    @property
    def authorize_url(self) -> str:
        return self.fake.base_url + AUTHORIZE_PATH

    def add_routes(self, router: web.UrlDispatcher, api_prefix: str) -> None:
        router.add_get(AUTHORIZE_PATH, self._authorize)
        router.add_post(api_prefix + "/oauth2/token", self._token)

    def authorises(self, rec: RecordedRequest) -> bool:
        """True for the calls this module authorises itself: the token exchange and Bearer look-ups."""
        if rec.path == "/oauth2/token":
            return True
        return self.bearer_user(rec.headers) is not None and rec.path in ("/users/@me", "/users/@me/guilds")

    def bearer_user(self, headers: Any) -> int | None:
        value = headers.get(hdrs.AUTHORIZATION, "")
        return self.tokens.get(value[7:]) if value.startswith("Bearer ") else None

    # -- the three steps of a sign-in ----------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        self.authorizations += 1
        q = request.query
        redirect = q.get("redirect_uri", "")
        scopes = set(q.get("scope", "").split())
        if q.get("client_id") != str(self.client_id) or q.get("response_type") != "code":
            return web.Response(status=400, text="Invalid OAuth2 request: client_id or response_type")
        if not redirect.startswith("http://127.0.0.1:") or not {"identify", "guilds"} <= scopes:
            return web.Response(status=400, text="Invalid OAuth2 redirect_uri or scope")
        answer: dict[str, str] = {}
        if self.refuse_next:
            self.refuse_next = False
            answer["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = _Grant(self.signed_in_as or self.fake.user_id, redirect)
            answer["code"] = code
        if "state" in q:
            answer["state"] = q["state"]
        return web.HTTPFound(
            f"{redirect}?{urlencode(answer)}"
        )  # returned: the fake turns raised ones into JSON

    def _client_ok(self, request: web.Request, form: Any) -> bool:
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if header.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
        return client_id == str(self.client_id) and secret == self.client_secret

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self._client_ok(request, form):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(str(form.get("code", "")), None)  # single use
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant.redirect_uri != form.get("redirect_uri")
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = grant.user_id
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 604_800,
                "refresh_token": secrets.token_urlsafe(24),
                "scope": "identify guilds",
            }
        )

    # -- what a Bearer token may read ------------------------------------------------------------------

    def me(self, user_id: int) -> dict[str, Any]:
        return self.fake.users[user_id] | {"locale": self.locales.get(user_id, "en-US"), "mfa_enabled": False}

    def my_guilds(self, user_id: int) -> list[dict[str, Any]]:
        """The member's servers (with or without the bot), with their permissions there."""
        return [
            {
                "id": str(g.id),
                "name": g.name,
                "icon": None,
                "banner": None,
                "owner": g.owner_id == user_id,
                "permissions": str(self.fake.member_permissions(g.id, user_id)),
                "features": [],
            }
            for g in sorted(self.fake.guilds.values(), key=lambda g: g.id)
            if user_id in g.members
        ]
