"""Post again only where the image was public: a private image (a DM, a message only the requester saw)
is sent again only to its requester, privately, and a moderator's /history offers no button for it."""

from __future__ import annotations

from typing import Any

from bot.core.models import JobStatus
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.test_living_messages import custom_ids
from tests.test_personal_settings import settings
from tests.test_styles import admin


async def history(world: World, user_id: int, member: int | None = None) -> tuple[int, dict[str, Any]]:
    """/history (of `member`, as `user_id`): the id of the message it answered with, and its data."""
    options = {} if member is None else {"member": member}
    interaction = await world.fake.invoke_slash("history", options, user_id=user_id)
    answer = (await world.fake.wait_for_callback(interaction)).json["data"]
    assert interaction.original_message_id is not None
    return interaction.original_message_id, answer


def images_in_public(world: World) -> int:
    """Messages anyone in a server channel can see that carry an image."""
    dms = {world.fake.dm_channel(world.fake.user_id)}
    return sum(
        1
        for m in world.fake.messages.values()
        if m["attachments"] and not m["flags"] & EPHEMERAL and int(m["channel_id"]) not in dms
    )


async def test_a_dm_image_is_sent_again_only_to_its_requester_and_only_privately(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await admin(world, "private-images", {"enabled": True})
        await settings(world, {"delivery": "dm"})
        await fake.invoke_slash("imagine", {"prompt": "for my eyes"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        assert job.delivery == "dm"

        # The moderator sees the image in the member's history, without a button to publish it.
        mod_history, shown = await history(world, fake.moderator_id, member=fake.user_id)
        assert "for my eyes" in shown["content"] and "imagine:repost:1" not in custom_ids(shown)
        # A click on such a button anyway (on a message an earlier version sent) is refused, and nothing
        # is posted.
        button = {"type": 2, "style": 2, "label": "Post #1 again", "custom_id": "imagine:repost:1"}
        fake.messages[mod_history]["components"] = [{"type": 1, "components": [button]}]
        forced = await fake.invoke_component("imagine:repost:1", mod_history, user_id=fake.moderator_id)
        refusal = (await fake.wait_for_callback(forced)).json
        assert (
            refusal["data"]["flags"] & EPHEMERAL and "only the member who asked" in refusal["data"]["content"]
        )

        # The requester gets the button, and the image again in a message only they see.
        own_history, shown = await history(world, fake.user_id)
        assert custom_ids(shown)[:1] == ["imagine:repost:1"]
        again = await fake.invoke_component("imagine:repost:1", own_history)
        deferred = (await fake.wait_for_callback(again)).json
        assert deferred["type"] == 5 and deferred["data"]["flags"] & EPHEMERAL
        await fake.wait_for_request(
            lambda r: f"/{again.token}" in r.path and bool(r.files) and r.status == 200
        )
    # The first follow-up after a deferral becomes the deferred message: one only the requester sees.
    message = fake.messages[again.original_message_id or 0]
    assert message["flags"] & EPHEMERAL and message["attachments"]
    assert "for your eyes only" in message["content"]
    assert images_in_public(world) == 0


async def test_an_image_only_its_requester_saw_comes_back_from_the_image_service(world: World) -> None:
    """A message only the requester saw cannot be fetched by the bot: the image service's link is used."""
    fake = world.fake
    async with world.bot() as bot:
        await admin(world, "private-images", {"enabled": True})
        await settings(world, {"delivery": "ephemeral"})
        await fake.invoke_slash("imagine", {"prompt": "quietly"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        assert job.delivery == "ephemeral"
        own_history, shown = await history(world, fake.user_id)
        assert custom_ids(shown)[:1] == ["imagine:repost:1"]
        again = await fake.invoke_component("imagine:repost:1", own_history)
        await fake.wait_for_request(
            lambda r: f"/{again.token}" in r.path and bool(r.files) and r.status == 200
        )
    message = fake.messages[again.original_message_id or 0]
    assert message["flags"] & EPHEMERAL and message["attachments"]
    assert images_in_public(world) == 0


async def test_a_public_image_is_still_offered_to_moderators(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await fake.invoke_slash("imagine", {"prompt": "for everyone"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        _, shown = await history(world, fake.moderator_id, member=fake.user_id)
    assert custom_ids(shown)[:1] == ["imagine:repost:1"]
