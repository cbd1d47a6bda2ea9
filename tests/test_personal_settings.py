"""/settings: a member's defaults (aspect ratio, style) fill in what /imagine leaves out, and their
images go where they chose (privately only where the server allows it)."""

from __future__ import annotations

from typing import Any

from bot.core import messages
from bot.core.models import JobStatus
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.test_living_messages import custom_ids
from tests.test_styles import admin


async def settings(world: World, options: dict[str, Any]) -> str:
    interaction = await world.fake.invoke_slash("settings", options)
    answer = (await world.fake.wait_for_callback(interaction)).json
    assert answer["type"] == 4 and answer["data"]["flags"] & EPHEMERAL
    return str(answer["data"]["content"])


async def test_defaults_apply_when_imagine_leaves_them_out(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        shown = await settings(world, {})
        assert "Aspect ratio: none" in shown and "Style: none" in shown and "posted in the channel" in shown
        await admin(world, "style add", {"name": "Noir", "text": "film noir"})
        assert "no style called" in await settings(world, {"style": "Pastel"})
        shown = await settings(world, {"aspect_ratio": "16:9", "style": "noir"})
        assert "Aspect ratio: 16:9" in shown and "Style: `Noir`" in shown

        await fake.invoke_slash("imagine", {"prompt": "a harbour"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        # Options given win over the defaults.
        await fake.invoke_slash("imagine", {"prompt": "a square harbour", "aspect_ratio": "1:1"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=2)
        assert "Style: none" in await settings(world, {"clear": "style"})
        await fake.invoke_slash("imagine", {"prompt": "a plain harbour"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=3)
    sent = [(s.json["prompt"], s.json.get("aspectRatio")) for s in world.submits()]
    assert sent == [
        ("a harbour, film noir", "16:9"),
        ("a square harbour, film noir", "1:1"),
        ("a plain harbour", "16:9"),
    ]


async def test_private_images_only_where_the_server_allows_them(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        shown = await settings(world, {"delivery": "ephemeral"})
        assert messages.PRIVATE_NOT_ALLOWED in shown
        await fake.invoke_slash("imagine", {"prompt": "public one"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        assert job.delivery == "channel" and len(world.bot_posts()) == 1

        assert "privately" in await admin(world, "private-images", {"enabled": True})
        status = await fake.invoke_slash("imagine", {"prompt": "only for me"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=2)
    assert job.delivery == "ephemeral" and job.result_message_id is not None
    private = fake.messages[job.result_message_id]
    assert private["flags"] & EPHEMERAL and private["attachments"]
    assert custom_ids(private) == ["imagine:reroll:2", "imagine:edit:2", "imagine:animate:2:1"]
    assert len(world.bot_posts()) == 1  # nothing more in the channel
    pointer = fake.messages[status.original_message_id or 0]
    assert not pointer["flags"] & EPHEMERAL and "sent to the requester privately" in pointer["content"]


async def test_private_images_by_direct_message(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await admin(world, "private-images", {"enabled": True})
        assert "direct message" in await settings(world, {"delivery": "dm"})
        status = await fake.invoke_slash("imagine", {"prompt": "to my DMs"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        assert job.delivery == "dm" and job.result_message_id is not None
        dm = fake.messages[job.result_message_id]
        assert int(dm["channel_id"]) == fake.dm_channel(fake.user_id) and dm["attachments"]
        assert "by direct message" in fake.messages[status.original_message_id or 0]["content"]

        # The server turns private images off again: the member's choice is kept but not used.
        await admin(world, "private-images", {"enabled": False})
        assert "does not allow private images" in await settings(world, {})
        await fake.invoke_slash("imagine", {"prompt": "back in the channel"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=2)
    assert job.delivery == "channel" and len(world.bot_posts()) == 1
