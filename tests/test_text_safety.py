"""What the image API says is shown as inert text, and no message of the bot exceeds Discord's limits."""

from __future__ import annotations

import re
from dataclasses import replace

import discord
import pytest

from bot.core import messages
from bot.core.models import JobStatus
from tests.bot_harness import World, wait_for_job
from tests.helpers import FAST_RUNNER

HOSTILE = (
    "[Verify your account](https://evil.example/login) # Heading\n"
    "> quoted\n- a list item\n-# subtext @everyone @here <@123456789012345678> <#42> <@&7> "
    "<t:1700000000:R> <:pepe:123456> </imagine:1> **bold** __under__ ~~gone~~ ||spoiler|| `code` "
    "see https://phish.example/a_b?c=1> now"
)


def live_markup(text: str) -> list[str]:
    """What Discord would still render as markup in `text`, read the way Discord reads it: a
    backslash before punctuation makes that character plain, and <scheme://...> is a plain link."""
    plain = re.sub(r"\\[^0-9A-Za-z\s]", "·", text)
    links = re.findall(r"<([a-z]+://[^\s>]*)>", plain)
    plain = re.sub(r"<[a-z]+://[^\s>]*>", "·", plain)
    found = []
    if re.search(r"\[[^\]\n]*\]\(", plain):
        found.append("masked link")
    if re.search(r"[a-z]+://", plain):
        found.append("bare link (would embed)")
    if re.search(r"<(@|#|t:|a?:\w+:|/)", plain) or re.search(r"@(everyone|here)", plain):
        found.append("mention, emoji or timestamp")
    if re.search(r"\*\*|__|~~|\|\||`", plain):
        found.append("formatting")
    for line in plain.split("\n"):
        if re.match(r"\s*(#{1,3} |-# |[-*+] |\d+\. |>)", line):
            found.append(f"line markup: {line[:20]!r}")
    found += [f"link with markup characters: {url[:40]}" for url in links if re.search(r"[<>`\s]", url)]
    return found


def test_the_oracle_sees_markup() -> None:
    # The checker above is what the other tests rely on: it must flag the raw text, all of it.
    flagged = live_markup(HOSTILE)
    assert {"masked link", "bare link (would embed)", "mention, emoji or timestamp", "formatting"} <= set(
        flagged
    )
    assert any(item.startswith("line markup") for item in flagged)


@pytest.mark.parametrize(
    "text",
    [
        HOSTILE,
        "- starts like a list",
        "12. starts like a numbered list",
        "## heading https://x.example/path_(with)_parens) trailing.",
        "https://a.example/`code`<b>|x|",
        "\\[escaped already\\](https://evil.example)",
    ],
)
def test_inert_leaves_no_markup(text: str) -> None:
    shown = messages.inert(text)
    assert live_markup(shown) == [], shown
    assert "\n" not in shown


def test_clip_never_leaves_half_a_link() -> None:
    text = "head\n" + "\n".join(messages.plain_link(f"https://x.example/{n}/" + "y" * 300) for n in range(9))
    clipped = messages.clip(text)
    assert len(clipped) <= messages.MESSAGE_LIMIT and clipped.endswith("…")
    assert clipped.count("<") == clipped.count(">")
    assert messages.clip("short") == "short"


async def test_the_fake_refuses_long_content_as_discord_does(world: World) -> None:
    async with world.bot() as bot:
        channel = bot.get_partial_messageable(world.fake.channel_id, guild_id=world.fake.guild_id)
        with pytest.raises(discord.HTTPException) as refused:
            await channel.send("x" * 2001)
        await channel.send("x" * 2000)
    assert refused.value.status == 400 and refused.value.code == 50035
    assert "2000 or fewer" in refused.value.text


async def test_an_api_error_message_is_shown_as_inert_text(world: World) -> None:
    world.sandbox.force_next("failed", error_message=HOSTILE, error_code=400)
    async with world.bot() as bot:
        interaction = await world.fake.invoke_slash("imagine", {"prompt": "a safe prompt"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.FAILED
    shown = world.fake.messages[interaction.original_message_id or 0]["content"]
    first_line = shown.split("\n")[0]
    api_part = first_line.split("no image this time.", 1)[1]
    assert "Verify your account" in api_part and "<https://evil.example/login>" in api_part
    assert live_markup(api_part) == [], api_part
    assert len(shown) <= 2000


async def test_long_links_of_failed_images_are_clipped_and_the_image_still_posted(world: World) -> None:
    sandbox = world.sandbox
    async with world.bot(runner_config=replace(FAST_RUNNER, download_attempts=1)) as bot:
        await world.fake.invoke_slash("imagine", {"prompt": "first"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        [task_id] = sandbox.tasks
        good = sandbox.image_url(sandbox.base_url or "", task_id)
        # Presigned links of images the host no longer has: 1500 characters each.
        dead = [
            f"{sandbox.base_url}/sandbox/images/expired-{n}/0.png?X-Amz-Signature=" + "f" * 1450
            for n in range(4)
        ]
        sandbox.force_next("completed", result={"images": [good, *dead]})
        await world.fake.invoke_slash("imagine", {"prompt": "second"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=2)
    post = world.fake.messages[job.result_message_id or 0]
    [attachment] = post["attachments"]
    assert world.fake.attachment_bytes(attachment) == sandbox.image_bytes(task_id)
    content = post["content"]
    assert len(content) <= 2000
    assert "second" in content and "could not be uploaded" in content
    assert re.findall(r"<https?://[^\s>]*(?:\s|$)", content) == []  # no half link
    assert f"<{dead[0]}>" in content  # the link that fits is shown whole
    assert "3 more that could not be shown here" in content
    assert live_markup(content.split("\n", 1)[1].replace("> second", "")) == []


async def test_a_result_message_discord_refuses_is_posted_again_with_a_short_text(world: World) -> None:
    fake = world.fake
    body = {"message": "Invalid Form Body", "code": 50035}
    fake.fail_route("POST", rf"/channels/{fake.channel_id}/messages", 400, body, times=1)
    async with world.bot() as bot:
        await fake.invoke_slash("imagine", {"prompt": "refused once"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.DELIVERED and job.delivery == "channel"
    refused, posted = world.bot_posts()
    assert refused.status == 400 and posted.status == 200
    assert posted.files[0].data == world.sandbox.image_bytes(next(iter(world.sandbox.tasks)))
    assert "Here is your image" in posted.json["content"]
