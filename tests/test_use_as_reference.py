""" "Use as reference" on any message: its images become the references of a new job, asked for in a
dialog of the member's own; a message without images gets a private answer."""

from __future__ import annotations

from typing import Any

import yarl

from bot.core import messages
from bot.core.models import JobStatus
from bot.discord.reference_menu import expires_soon
from testing.fake_discord import FakeInteraction
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.helpers import png_bytes
from tests.test_living_messages import DEFERRED, MODAL

MENU = "Use as reference"


async def open_dialog(world: World, message_id: int, user_id: int) -> tuple[FakeInteraction, dict[str, Any]]:
    interaction = await world.fake.invoke_message_command(MENU, message_id, user_id=user_id)
    return interaction, (await world.fake.wait_for_callback(interaction)).json


async def test_a_message_with_two_images_becomes_the_references(world: World) -> None:
    fake = world.fake
    assert fake.moderator_id != fake.user_id
    async with world.bot() as bot:
        synced = [c for c in fake.commands[fake.guild_id] if c["name"] == MENU]
        assert [c["type"] for c in synced] == [3]  # a MESSAGE command
        post = await fake.post_as_member(
            "my sketches",
            images=[("one.png", png_bytes((40, 30), "red")), ("two.png", png_bytes((30, 40), "blue"))],
            user_id=fake.moderator_id,
        )
        _, dialog = await open_dialog(world, int(post["id"]), fake.user_id)
        assert dialog["type"] == MODAL
        # Another member's dialog on the same message is their own.
        _, other = await open_dialog(world, int(post["id"]), fake.moderator_id)
        assert other["data"]["custom_id"] != dialog["data"]["custom_id"]
        inputs = [c for row in dialog["data"]["components"] for c in row["components"]]
        assert "2 reference images" in inputs[0]["label"]
        submitted = await fake.submit_modal(
            dialog["data"]["custom_id"],
            {inputs[0]["custom_id"]: "both as one painting", inputs[1]["custom_id"]: ""},
        )
        assert (await fake.wait_for_callback(submitted)).json["type"] == DEFERRED
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        rows = await bot.store.usage.export(fake.guild_id, 0, 1e12, 10)
    assert (job.user_id, job.prompt, len(job.reference_urls)) == (fake.user_id, "both as one painting", 2)
    [submit] = world.submits()
    sent = [yarl.URL(u).path for u in submit.json["images"]]
    assert sent == [yarl.URL(a["url"]).path for a in post["attachments"]]
    # The sandbox fetched both (it refuses a submit whose references it cannot download).
    fetched = {r.path for r in fake.requests if r.method == "GET" and r.path in sent}
    assert fetched == set(sent)
    assert len(rows) == 1  # logged and counted like /imagine


async def test_a_message_without_images_gets_a_private_answer(world: World) -> None:
    fake = world.fake
    async with world.bot():
        post = await fake.post_as_member("just words", user_id=fake.moderator_id)
        _, answer = await open_dialog(world, int(post["id"]), fake.user_id)
    assert answer["type"] == 4 and answer["data"]["flags"] & EPHEMERAL
    assert answer["data"]["content"] == messages.REFERENCE_NO_IMAGES
    assert world.submits() == []


def test_only_links_that_expired_or_are_about_to_are_refreshed() -> None:
    now = 1_800_000_000
    fresh = f"https://cdn.discordapp.com/attachments/1/2/a.png?ex={now + 86_400:08x}&is=0&hm=ab&"
    soon = f"https://cdn.discordapp.com/attachments/1/2/a.png?ex={now + 60:08x}&is=0&hm=ab&"
    gone = f"https://cdn.discordapp.com/attachments/1/2/a.png?ex={now - 1:08x}&is=0&hm=ab&"
    assert not expires_soon(fresh, now)
    assert expires_soon(soon, now) and expires_soon(gone, now)
    assert not expires_soon("https://example.com/picture.png", now)  # not a signed link: kept
