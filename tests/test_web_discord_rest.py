"""The web server's one Discord REST client (bot/web/discord_rest.py) against the fake Discord: one
kind of error for every way Discord can fail (a long rate limit, a 5xx, a refused connection, no
token) whose text never holds the token, a short rate limit waited out, names kept a while and
permission checks read afresh, and attachment links fetched without the token."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.web.discord_rest import ADMINISTRATOR, MANAGE_MESSAGES, DiscordRest, DiscordUnavailable
from testing.fake_discord import FakeDiscord, running_fake
from tests.web_harness import free_port, png

MAX_BYTES = 1024 * 1024


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with running_fake() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


def client(fake: FakeDiscord, http: aiohttp.ClientSession, token: str | None = "default") -> DiscordRest:
    return DiscordRest(http, fake.api_base, fake.token if token == "default" else token, MAX_BYTES)


def calls(fake: FakeDiscord, method: str, path: str) -> int:
    return sum(1 for r in fake.requests if r.method == method and r.path == path)


async def test_every_failure_is_discord_unavailable_and_never_shows_the_token(
    fake: FakeDiscord, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rest = client(fake, http)
    guild = fake.guild_id
    failures: list[str] = []

    fake.rate_limit_once("GET", rf"/guilds/{guild}", retry_after=60)
    with pytest.raises(DiscordUnavailable) as busy:
        await rest.guild(guild)
    failures.append(str(busy.value))
    assert "rate limited" in str(busy.value)

    fake.fail_route("POST", r"/attachments/refresh-urls", 503)
    with pytest.raises(DiscordUnavailable) as down:
        await rest.refresh(["https://cdn.example/a.png"])
    failures.append(str(down.value))
    assert "503" in str(down.value)

    nowhere = DiscordRest(http, f"http://127.0.0.1:{free_port()}/api/v10", fake.token, MAX_BYTES)
    with pytest.raises(DiscordUnavailable) as unreachable:
        await nowhere.member(guild, fake.user_id)
    failures.append(str(unreachable.value))
    assert "ClientConnectorError" in str(unreachable.value)

    tokenless = client(fake, http, token=None)
    assert not tokenless.usable and rest.usable
    with pytest.raises(DiscordUnavailable):
        await tokenless.user_name(fake.user_id)

    # A failed post in the mod-log is logged, not raised.
    fake.fail_route("POST", rf"/channels/{fake.channel_id}/messages", 500)
    assert await rest.post(fake.channel_id, "hello") is False

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert all(fake.token not in text for text in [*failures, logged])
    assert f"GET /guilds/{guild}" in failures[0]


async def test_a_short_rate_limit_is_waited_out(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    rest = client(fake, http)
    fake.rate_limit_once("GET", rf"/guilds/{fake.guild_id}/members/{fake.user_id}")
    member = await rest.member(fake.guild_id, fake.user_id)
    assert member is not None and member.user_id == fake.user_id
    assert calls(fake, "GET", f"/guilds/{fake.guild_id}/members/{fake.user_id}") == 2


async def test_names_are_kept_and_permission_checks_read_afresh(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    rest = client(fake, http)
    guild, user = fake.guild_id, fake.user_id
    member_path = f"/guilds/{guild}/members/{user}"

    for _ in range(3):  # what a page shows: asked once
        assert await rest.user_name(user)
        await rest.member_name(guild, user)
        await rest.member_cached(guild, user)
        assert await rest.guild(guild) is not None
    assert calls(fake, "GET", f"/users/{user}") == 1
    assert calls(fake, "GET", f"/guilds/{guild}") == 1
    assert calls(fake, "GET", member_path) == 1

    # A permission check asks Discord each time, and sees a change at once.
    helper = fake.add_role(guild, "Helper", MANAGE_MESSAGES)
    before = await rest.member(guild, user)
    fake.add_member(guild, user, roles=[helper])
    after = await rest.member(guild, user)
    assert before is not None and after is not None and helper in after.role_ids
    assert helper not in before.role_ids
    assert calls(fake, "GET", member_path) == 3
    fresh = await rest.guild(guild, fresh=True)
    assert fresh is not None and fresh.permissions_of(after) & MANAGE_MESSAGES
    # The owner holds every permission whatever their roles.
    owner = await rest.member(guild, fake.owner_id)
    assert owner is not None and fresh.permissions_of(owner) & ADMINISTRATOR

    # The gallery's membership: one question for the pictures of a page, and "not a member" for a
    # stranger.
    asked = calls(fake, "GET", member_path)
    for _ in range(5):
        roles, permissions = await rest.member_access(guild, user)
        assert roles is not None and helper in roles and permissions & MANAGE_MESSAGES
    assert calls(fake, "GET", member_path) == asked + 1
    assert await rest.member_access(guild, 4242) == (None, 0)


async def test_attachments_are_refreshed_and_fetched_without_the_token(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    rest = client(fake, http)
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps({"content": "", "attachments": [{"id": 0}]}))
    form.add_field("files[0]", png((200, 10, 10)), filename="image.png", content_type="image/png")
    async with http.post(
        f"{fake.api_base}/channels/{fake.channel_id}/messages",
        data=form,
        headers={"Authorization": f"Bot {fake.token}"},
    ) as response:
        posted = await response.json()
    [attachment] = await rest.attachments(fake.channel_id, int(posted["id"])) or []
    fresh = await rest.refresh([attachment.url])
    got = await rest.download(fresh[attachment.url])
    assert got is not None and got[0].startswith(b"\x89PNG") and got[1] == "image/png"
    cdn = [r for r in fake.requests if not r.api]
    assert cdn and all("Authorization" not in r.headers for r in cdn)
    # A deleted message: gone, and its attachments with it.
    assert await rest.delete_message(fake.channel_id, int(posted["id"]))
    assert await rest.attachments(fake.channel_id, int(posted["id"])) is None
