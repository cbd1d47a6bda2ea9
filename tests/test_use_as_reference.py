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
from tests.helpers import ImageHost, png_bytes
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
        rows = await bot.store.export_usage(fake.guild_id, 0, 1e12, 10)
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


async def use_as_reference(world: World, embeds: list[dict[str, Any]], prompt: str) -> dict[str, Any]:
    """A member posts a message with these embeds; another uses it as reference: the modal's answer."""
    fake = world.fake
    post = await fake.post_as_member("look at this", embeds=embeds, user_id=fake.moderator_id)
    _, dialog = await open_dialog(world, int(post["id"]), fake.user_id)
    assert dialog["type"] == MODAL
    inputs = [c for row in dialog["data"]["components"] for c in row["components"]]
    submitted = await fake.submit_modal(
        dialog["data"]["custom_id"], {inputs[0]["custom_id"]: prompt, inputs[1]["custom_id"]: ""}
    )
    answer: dict[str, Any] = (await fake.wait_for_callback(submitted, timeout=10)).json
    return answer


async def test_embed_links_are_read_like_result_images_before_anything_is_sent(world: World) -> None:
    fake = world.fake
    limit = 50_000
    async with ImageHost() as public, ImageHost("127.0.0.2") as internal:
        public.files["notes.png"] = b"just some text, not a picture\n" * 20
        public.files["huge.png"] = b"\x89PNG\r\n\x1a\n" + bytes(limit)
        hosts = (f"127.0.0.1:{fake.port}", public.origin)  # 127.0.0.2 is not allowed: internal
        async with world.bot(result_hosts=hosts, max_attachment_bytes=limit) as bot:
            cases = [
                (internal.url("/latest/meta-data/cat.png"), "`cat.png`", "not on a public address"),
                (public.url("/file/notes.png"), "`notes.png`", "did not lead to an image"),
                (public.url("/file/huge.png"), "`huge.png`", "larger than the bot accepts"),
            ]
            for url, name, why in cases:
                answer = await use_as_reference(world, [{"image": {"url": url}}], "edit it")
                assert answer["type"] == 4 and answer["data"]["flags"] & EPHEMERAL
                text = answer["data"]["content"]
                assert (
                    text.startswith(f"The linked image {name} cannot be used as a reference") and why in text
                )
                assert url not in text  # where the link led is for the log, not the member
            assert internal.hits == []  # the internal host was never asked
            assert world.submits() == []  # nothing billed

            good = public.url("/pictures/sunset.png")
            answer = await use_as_reference(world, [{"image": {"url": good}}], "the same at dawn")
            assert answer["type"] == DEFERRED
            job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
    [submit] = world.submits()
    assert submit.json["images"] == [good] and job.reference_urls == [good]
    assert public.hits.count("/pictures/sunset.png") == 2  # read by the bot's check, then by the API
