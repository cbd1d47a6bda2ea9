"""Buttons used by several members at once: each Edit dialog is its own, Post again is rate-limited."""

from __future__ import annotations

from typing import Any

from bot.core.models import JobStatus
from tests.bot_harness import EPHEMERAL, ShiftedClock, World, wait_for_job
from tests.test_living_messages import MODAL, custom_ids, deliver_one


async def open_edit(world: World, message_id: int, user_id: int) -> dict[str, Any]:
    click = await world.fake.invoke_component("imagine:edit:1", message_id, user_id=user_id)
    modal = (await world.fake.wait_for_callback(click)).json
    assert modal["type"] == MODAL
    return dict(modal["data"])


async def test_two_members_editing_the_same_image_both_get_their_edit(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        message = await deliver_one(world, bot, 1)
        # Both open the dialog before either submits it.
        ana = await open_edit(world, int(message["id"]), fake.user_id)
        mia = await open_edit(world, int(message["id"]), fake.moderator_id)
        assert ana["custom_id"] != mia["custom_id"]
        for dialog, user_id, prompt in (
            (mia, fake.moderator_id, "in winter"),
            (ana, fake.user_id, "at night"),
        ):
            inputs = [c["custom_id"] for row in dialog["components"] for c in row["components"]]
            await fake.submit_modal(dialog["custom_id"], {inputs[0]: prompt, inputs[1]: ""}, user_id=user_id)
        second = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=2)
        third = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=3)
    assert {(second.user_id, second.prompt), (third.user_id, third.prompt)} == {
        (fake.moderator_id, "in winter"),
        (fake.user_id, "at night"),
    }
    original = world.fake.messages[int(message["id"])]["attachments"][0]["url"].split("?")[0]
    assert all(s.json["images"][0].split("?")[0] == original for s in world.submits()[1:])


async def test_post_again_is_rate_limited_per_member(world: World) -> None:
    fake = world.fake
    clock = ShiftedClock()
    async with world.bot(clock=clock) as bot:
        await deliver_one(world, bot, 1)
        history = (await fake.wait_for_callback(await fake.invoke_slash("history"))).json["data"]
        assert "imagine:repost:1" in custom_ids(history)
        history_id = max(int(m["id"]) for m in fake.messages.values() if "imagine:repost:1" in custom_ids(m))

        async def repost(user_id: int) -> dict[str, Any]:
            click = await fake.invoke_component("imagine:repost:1", history_id, user_id=user_id)
            answer = (await fake.wait_for_callback(click)).json
            if answer["type"] == 5:  # deferred: the image follows publicly
                await fake.wait_for_request(
                    lambda r: r.method == "POST" and f"/{click.token}" in r.path and bool(r.files)
                )
            return dict(answer)

        assert (await repost(fake.user_id))["type"] == 5
        refused = await repost(fake.user_id)
        assert refused["type"] == 4 and refused["data"]["flags"] & EPHEMERAL
        assert "Please wait 10 s" in refused["data"]["content"]
        assert (await repost(fake.moderator_id))["type"] == 5  # another member is not held back
        clock.offset += 10.5
        assert (await repost(fake.user_id))["type"] == 5
    reposts = [r for r in fake.requests if r.method == "POST" and r.files and "/webhooks/" in r.path]
    assert len(reposts) == 3
