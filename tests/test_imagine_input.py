"""Input checks happen before any network call: refusals are private and nothing is submitted."""

from __future__ import annotations

import pytest

from bot.core.models import JobStatus
from tests.bot_harness import EPHEMERAL, World, wait_for_job

MESSAGE = 4
MiB = 1024 * 1024


async def test_reference_images_reach_the_api_exactly(world: World) -> None:
    fake = world.fake
    first = fake.make_attachment("cat.png", "image/png")
    second = fake.make_attachment("dog.jpg", "image/jpeg")
    async with world.bot() as bot:
        interaction = await fake.invoke_slash(
            "imagine",
            {"prompt": "the two of them on a sofa", "aspect_ratio": "1:1"},
            attachments={"image1": first, "image2": second},
        )
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
    [submit] = world.submits()
    assert submit.json["images"] == [first["url"], second["url"]]
    assert "?ex=" in first["url"] and "&hm=" in first["url"]  # the signed query string went through intact
    assert job.reference_urls == [first["url"], second["url"]]
    # The status said that the size follows the references.
    edits = [
        r.json.get("content", "")
        for r in fake.requests
        if r.method == "PATCH" and f"/{interaction.token}/messages/" in r.path and r.json
    ]
    assert any("follows the references" in text for text in edits)
    [post] = world.bot_posts()
    assert "2 reference images" in post.json["content"]


async def refused(
    world: World, options: dict[str, object], attachments: dict[str, object] | None = None
) -> str:
    fake = world.fake
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", options, attachments=attachments)
        callback = await fake.wait_for_callback(interaction)
        await world.settle(bot)  # anything that should not happen would be under way or done by now
    assert callback.json["type"] == MESSAGE
    assert callback.json["data"]["flags"] & EPHEMERAL
    assert world.submits() == []
    assert world.bot_posts() == []
    return str(callback.json["data"]["content"])


async def test_text_attachment_is_refused(world: World) -> None:
    notes = world.fake.make_attachment("notes.txt", "text/plain", data=b"hello")
    text = await refused(world, {"prompt": "use my notes"}, {"image1": notes})
    assert "notes.txt" in text and "PNG, JPEG, WebP or GIF" in text


async def test_oversized_attachment_is_refused(world: World) -> None:
    big = world.fake.make_attachment("huge.png", "image/png", size=11 * MiB)
    text = await refused(world, {"prompt": "bigger"}, {"image1": big})
    assert "huge.png" in text and "10 MB" in text


@pytest.mark.parametrize("prompt", ["   ", "\n\t "])
async def test_blank_prompt_is_refused(world: World, prompt: str) -> None:
    text = await refused(world, {"prompt": prompt})
    assert "empty" in text


async def test_over_long_prompt_is_refused(world: World) -> None:
    text = await refused(world, {"prompt": "x" * 5001})
    assert "5,000" in text


async def test_imagine_in_a_dm_is_personal_use(world: World) -> None:
    """A DM with the bot (here through the server's install: owners {"0": "0"}) belongs to no server:
    personal use, under the personal quota (tests/test_personal_use.py has the rest)."""
    fake = world.fake
    async with world.bot(default_personal_quota=0):
        interaction = await fake.invoke_slash("imagine", {"prompt": "hello"}, dm=True)
        callback = await fake.wait_for_callback(interaction)
    assert callback.json["data"]["flags"] & EPHEMERAL
    assert "Personal use of the image bot is turned off" in callback.json["data"]["content"]
    assert world.submits() == []
