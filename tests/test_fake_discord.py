"""The fake Discord carries a real, bare discord.py client end to end: login, gateway, commands, files."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import discord
import pytest
from discord import app_commands

from testing.fake_discord import FakeDiscord, RecordedRequest, run_client, running_fake, shard_of

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


@dataclass
class PingCall:
    interaction: discord.Interaction
    text: str
    image: discord.Attachment


class PingClient(discord.Client):
    """A bare client with one ``/ping text image`` command that defers and then reports the call."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.calls: asyncio.Queue[PingCall] = asyncio.Queue()
        self.resumed = asyncio.Event()

        @self.tree.command(name="ping", description="Reply with the given image")
        @app_commands.describe(text="What to say", image="An image to echo")
        async def ping(interaction: discord.Interaction, text: str, image: discord.Attachment) -> None:
            await interaction.response.defer()
            await self.calls.put(PingCall(interaction, text, image))

    async def on_resumed(self) -> None:
        self.resumed.set()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with running_fake() as running:
        yield running


def is_route(method: str, path: str) -> Callable[[RecordedRequest], bool]:
    return lambda r: r.method == method and r.path == path


async def test_login_ready_guild_create_and_guild_sync(fake: FakeDiscord) -> None:
    client = PingClient()
    async with run_client(fake, client):
        assert client.user is not None and client.user.id == fake.bot_user_id and client.user.bot
        assert client.application_id == fake.application_id
        guild = client.get_guild(fake.guild_id)
        assert guild is not None and guild in client.guilds
        channel = guild.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel) and channel.name == "general"
        assert guild.me.id == fake.bot_user_id and guild.owner_id == fake.owner_id
        assert guild.filesize_limit == 10 * 1024**2
        assert guild.default_role.permissions.send_messages

        guild_obj = discord.Object(fake.guild_id)
        client.tree.copy_global_to(guild=guild_obj)
        synced = await client.tree.sync(guild=guild_obj)

    put = await fake.wait_for_request(
        is_route("PUT", f"/applications/{fake.application_id}/guilds/{fake.guild_id}/commands")
    )
    assert put.headers["Authorization"] == f"Bot {fake.token}"
    assert [c["name"] for c in put.json] == ["ping"]
    assert [c.id for c in synced] == [int(c["id"]) for c in fake.commands[fake.guild_id]]
    option_types = {o["name"]: o["type"] for o in fake.commands[fake.guild_id][0]["options"]}
    assert option_types == {"text": 3, "image": 11}


async def test_slash_command_defer_edit_and_channel_upload(fake: FakeDiscord) -> None:
    client = PingClient()
    async with run_client(fake, client):
        guild_obj = discord.Object(fake.guild_id)
        client.tree.copy_global_to(guild=guild_obj)
        await client.tree.sync(guild=guild_obj)

        upload = fake.make_attachment("cat.png", "image/png", data=PNG_BYTES)
        inter = await fake.invoke_slash("ping", {"text": "hello"}, attachments={"image": upload})
        call = await asyncio.wait_for(client.calls.get(), 5)

        # Options arrive typed, the Attachment keeps the signed URL and reads its bytes from the fake.
        assert call.text == "hello"
        assert call.image.url == upload["url"] and "hm=" in call.image.url
        assert (call.image.content_type, call.image.size, call.image.filename) == ("image/png", 72, "cat.png")
        assert await call.image.read() == PNG_BYTES
        assert call.interaction.user.id == fake.user_id
        assert isinstance(call.interaction.user, discord.Member)
        assert call.interaction.command is not None and call.interaction.command.name == "ping"

        deferral = await fake.wait_for_callback(inter)
        assert deferral.json == {"type": 5} and deferral.query == {"with_response": "1"}
        assert deferral.received_at >= inter.sent_at
        original = fake.messages[inter.original_message_id or 0]
        assert original["flags"] & 128  # "thinking"

        edited = await call.interaction.edit_original_response(
            content="done", attachments=[discord.File(io.BytesIO(b"result-bytes"), "result.png")]
        )
        patch = await fake.wait_for_request(
            is_route("PATCH", f"/webhooks/{fake.application_id}/{inter.token}/messages/@original")
        )
        assert patch.json["content"] == "done"
        assert [(f.filename, f.data) for f in patch.files] == [("result.png", b"result-bytes")]
        assert edited.content == "done" and edited.attachments[0].filename == "result.png"
        assert await edited.attachments[0].read() == b"result-bytes"
        assert not original["flags"] & 128

        channel = client.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("posted", file=discord.File(io.BytesIO(PNG_BYTES), "post.png"))
        stored = await fake.wait_for_message(lambda m: m["id"] == str(sent.id))
        url = stored["attachments"][0]["url"]
        assert sent.attachments[0].url == url and url.startswith(fake.base_url)
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200 and resp.content_type == "image/png"
            assert await resp.read() == PNG_BYTES

        fake.expire_url(url)
        with pytest.raises(discord.NotFound):
            await sent.attachments[0].read()


async def test_faults_forbidden_rate_limit_and_expired_token(fake: FakeDiscord) -> None:
    client = PingClient()
    async with run_client(fake, client):
        channel = client.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)

        fake.rate_limit_once("POST", rf"/channels/{fake.channel_id}/messages", retry_after=0.01)
        message = await channel.send("after a 429")
        posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
        assert [r.status for r in posts] == [429, 200] and message.content == "after a 429"

        fake.forbid_channel_posts(fake.channel_id)
        with pytest.raises(discord.Forbidden) as forbidden:
            await channel.send("nope")
        assert forbidden.value.code == 50013

        inter = await fake.invoke_slash(
            "ping", {"text": "x"}, attachments={"image": fake.make_attachment("a.png")}
        )
        call = await asyncio.wait_for(client.calls.get(), 5)
        fake.expire_interaction(inter)
        with pytest.raises(discord.HTTPException) as expired:
            await call.interaction.edit_original_response(content="too late")
        assert (expired.value.status, expired.value.code) == (401, 50027)


def png_file(name: str, tag: int) -> discord.File:
    return discord.File(io.BytesIO(PNG_BYTES + bytes([tag])), name)


async def test_edits_keep_attachments_by_id_and_add_new_files_on_every_kind_of_message(
    fake: FakeDiscord,
) -> None:
    """An edit's `attachments` list is the message's attachments afterwards, in that order: kept ones
    by id, new ones as uploads of the call; one left out is gone, an unknown id is refused."""
    client = PingClient()
    async with run_client(fake, client):
        await fake.invoke_slash("ping", {"text": "x"}, attachments={"image": fake.make_attachment("in.png")})
        call = await asyncio.wait_for(client.calls.get(), 5)
        # The interaction's own message: one image, then a second one put before it, the first kept.
        first = await call.interaction.edit_original_response(
            content="1 of 2", attachments=[png_file("b.png", 2)]
        )
        both = await call.interaction.edit_original_response(
            content="2 of 2", attachments=[png_file("a.png", 1), *first.attachments]
        )
        assert [a.filename for a in both.attachments] == ["a.png", "b.png"]
        assert both.attachments[1].id == first.attachments[0].id  # kept, not uploaded again
        assert fake.message_files(both.id) == [("a.png", PNG_BYTES + b"\x01"), ("b.png", PNG_BYTES + b"\x02")]
        # Left out: gone. Kept by an edit through the webhook route too.
        only_b = await call.interaction.edit_original_response(attachments=[both.attachments[1]])
        assert [a["filename"] for a in fake.message_attachments(only_b.id)] == ["b.png"]
        # An attachment the message does not have (another message's) is refused, and nothing changes.
        other = await call.interaction.followup.send("other", file=png_file("c.png", 3), wait=True)
        with pytest.raises(discord.HTTPException) as refused:
            await call.interaction.edit_original_response(
                attachments=[*only_b.attachments, *other.attachments]
            )
        assert (refused.value.status, refused.value.code) == (400, 50035)
        assert [name for name, _ in fake.message_files(only_b.id)] == ["b.png"]

        # A follow-up message only the requester sees: its new attachments are ephemeral ones too.
        private = await call.interaction.followup.send(
            "mine", file=png_file("p1.png", 4), ephemeral=True, wait=True
        )
        edited = await call.interaction.followup.edit_message(
            private.id, attachments=[*private.attachments, png_file("p2.png", 5)]
        )
        assert [a.filename for a in edited.attachments] == ["p1.png", "p2.png"]
        assert all(a.get("ephemeral") for a in fake.message_attachments(private.id))
        assert fake.message_files(private.id)[1] == ("p2.png", PNG_BYTES + b"\x05")

        # A channel message the bot posted: a new file added after the kept one, then the order swapped.
        channel = client.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        posted = await channel.send("grid", file=png_file("g1.png", 6))
        grown = await posted.edit(attachments=[*posted.attachments, png_file("g2.png", 7)])
        swapped = await grown.edit(attachments=list(reversed(grown.attachments)))
        assert [a.filename for a in swapped.attachments] == ["g2.png", "g1.png"]
        assert [name for name, _ in fake.message_files(posted.id)] == ["g2.png", "g1.png"]
        read = await channel.fetch_message(posted.id)
        assert [await a.read() for a in read.attachments] == [PNG_BYTES + b"\x07", PNG_BYTES + b"\x06"]


async def test_dm_component_and_modal_interactions(fake: FakeDiscord) -> None:
    client = PingClient()
    seen: asyncio.Queue[discord.Interaction] = asyncio.Queue()

    class Form(discord.ui.Modal, title="Prompt"):
        prompt: discord.ui.TextInput[Form] = discord.ui.TextInput(label="Prompt", custom_id="prompt")

        async def on_submit(self, interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"got {self.prompt.value}", ephemeral=True)

    class Buttons(discord.ui.View):
        @discord.ui.button(label="Go", custom_id="go")
        async def go(self, interaction: discord.Interaction, button: discord.ui.Button[Buttons]) -> None:
            await interaction.response.send_modal(Form(custom_id="form"))
            await seen.put(interaction)

    async with run_client(fake, client):
        channel = client.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        message = await channel.send("press", view=Buttons())

        click = await fake.invoke_component("go", message.id)
        clicked = await asyncio.wait_for(seen.get(), 5)
        assert clicked.message is not None and clicked.message.id == message.id
        assert (await fake.wait_for_callback(click)).json["type"] == 9

        submit = await fake.submit_modal("form", {"prompt": "a red fox"})
        reply = await fake.wait_for_callback(submit)
        assert reply.json == {"type": 4, "data": {"content": "got a red fox", "tts": False, "flags": 64}}
        assert fake.messages[submit.original_message_id or 0]["flags"] & 64

        dm = await fake.invoke_slash(
            "ping", {"text": "dm"}, attachments={"image": fake.make_attachment("b.png")}, dm=True
        )
        call = await asyncio.wait_for(client.calls.get(), 5)
        assert call.interaction.guild is None and isinstance(call.interaction.user, discord.User)
        assert isinstance(call.interaction.channel, discord.DMChannel)
        assert (await fake.wait_for_callback(dm)).json == {"type": 5}


async def test_close_then_second_client_on_same_fake(fake: FakeDiscord) -> None:
    first = PingClient()
    async with run_client(fake, first):
        pass
    assert first.is_closed()

    second = PingClient()
    async with run_client(fake, second):
        assert second.get_guild(fake.guild_id) is not None
        inter = await fake.invoke_slash(
            "ping", {"text": "two"}, attachments={"image": fake.make_attachment("c.png")}
        )
        call = await asyncio.wait_for(second.calls.get(), 5)
        assert call.text == "two"
        assert (await fake.wait_for_callback(inter)).json == {"type": 5}
    assert fake.sessions_started == 2
    identifies = [f for f in fake.gateway_log if f["op"] == 2]
    assert len(identifies) == 2 and identifies[0]["d"]["intents"] == discord.Intents.default().value


async def test_reconnect_resumes_the_session(fake: FakeDiscord) -> None:
    client = PingClient()
    async with run_client(fake, client):
        before = fake.sessions_started
        await fake.send_reconnect()  # op 7: discord.py reconnects to resume_gateway_url and sends RESUME
        await fake.wait_connected(newer_than=before)
        await asyncio.wait_for(client.resumed.wait(), 5)
        assert [frame["op"] for frame in fake.gateway_log].count(6) == 1
        image = fake.make_attachment("d.png")
        inter = await fake.invoke_slash("ping", {"text": "again"}, attachments={"image": image})
        assert (await asyncio.wait_for(client.calls.get(), 5)).text == "again"
        assert (await fake.wait_for_callback(inter)).json == {"type": 5}


class ShardedPingClient(PingClient, discord.AutoShardedClient):
    """The same client, sharded: as many shards as the fake's GET /gateway/bot recommends."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """The fake has no IDENTIFY rate limit: no 5 s between shards."""


async def test_sharded_client_gets_each_server_on_its_shard_and_resumes_with_it() -> None:
    async with running_fake(recommended_shards=2) as fake:
        other = fake.add_guild("Second", shard=(1 - shard_of(fake.guild_id, 2), 2))
        fake.add_member(other, fake.user_id)
        client = ShardedPingClient()
        async with run_client(fake, client):
            assert client.shard_count == 2 and sorted(client.shards) == [0, 1]
            assert {g.id: g.shard_id for g in client.guilds} == {
                gid: shard_of(gid, 2) for gid in (fake.guild_id, other)
            }
            before = fake.sessions_started
            await fake.send_reconnect()  # each shard RESUMEs; Discord keeps the shard of the session
            await fake.wait_connected(newer_than=before, sessions=2)
            assert sorted(fake.connected_shards()) == [(0, 2), (1, 2)]
            assert [frame["op"] for frame in fake.gateway_log].count(6) == 2
            for gid in (fake.guild_id, other):
                image = fake.make_attachment("e.png")
                inter = await fake.invoke_slash(
                    "ping", {"text": str(gid)}, attachments={"image": image}, guild_id=gid
                )
                call = await asyncio.wait_for(client.calls.get(), 5)
                assert call.text == str(gid) and call.interaction.guild_id == gid
                assert inter.shard == shard_of(gid, 2)


async def test_identify_with_a_shard_out_of_range_is_closed_with_4010(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url) as ws:
        assert (await ws.receive_json())["op"] == 10  # HELLO
        identify = {"token": fake.token, "intents": 0, "properties": {}, "shard": [2, 2]}
        await ws.send_json({"op": 2, "d": identify})
        message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 4010
    assert fake.sessions_started == 0
