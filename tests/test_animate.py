"""Animate through the fake Discord and the sandbox: /animate, the Animate button under an image, the
message menu; the posted bytes are a playable MP4 of the asked length; bad input and a server that
turned videos off are refused before anything is billed; a result that is not a video is refunded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import discord
import pytest

from bot.core.models import JobStatus
from bot.core.usage_records import EXPORT_COLUMNS
from bot.core.video_contract import MAX_MOTION_PROMPT_CHARS
from testing import fake_discord
from testing.mp4_boxes import read_mp4
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.helpers import png_bytes
from tests.test_living_messages import DEFERRED, MODAL

MENU = "Animate"


def video_submits(world: World) -> list[Any]:
    return [r for r in world.sandbox.requests if r.method == "POST" and r.path == "/xai/videos"]


def posted_mp4(world: World) -> tuple[Any, bytes]:
    """The one message the bot posted in the channel, and its MP4."""
    [post] = world.bot_posts()
    [upload] = post.files
    assert upload.filename.endswith(".mp4")
    return post, upload.data


def status_texts(world: World, interaction: Any) -> list[str]:
    """The contents the status message was edited to, in order (a failure ends there)."""
    return [
        str(r.json.get("content", ""))
        for r in world.fake.requests
        if r.method == "PATCH" and f"/{interaction.token}/messages/" in r.path and isinstance(r.json, dict)
    ]


def private_answer(callback: Any) -> str:
    body = callback.json
    assert body["data"]["flags"] & EPHEMERAL
    return str(body["data"]["content"])


def labels(body: dict[str, Any]) -> list[str]:
    return [c["label"] for row in body.get("components", []) for c in row["components"]]


def custom_ids(body: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in body.get("components", []) for c in row["components"]]


async def usage_units(world: World, bot: Any) -> int:
    """What the member's rows hold against the quota now (units, refunds given back)."""
    rows = await bot.store.backend.run(
        lambda s: s.rows("SELECT COALESCE(SUM(counted), 0) FROM usage WHERE outcome != 'refused'", {})
    )
    return int(rows[0][0])


@pytest.fixture
def upload_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A small upload limit in the fake Discord (it refuses larger files) that the bot reads as Discord's
    (discord.py derives a server's limit from its boost tier)."""

    def set_limit(limit: int) -> None:
        tiers = dict(discord.Guild._PREMIUM_GUILD_LIMITS)
        tiers[0] = tiers[0]._replace(filesize=limit)
        monkeypatch.setattr(discord.Guild, "_PREMIUM_GUILD_LIMITS", tiers)
        monkeypatch.setitem(fake_discord.FILESIZE_LIMITS, 0, limit)

    yield set_limit


# -- /animate ---------------------------------------------------------------------------------------------


async def test_animate_from_text_posts_a_playable_mp4_of_the_asked_length(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        interaction = await fake.invoke_slash(
            "animate",
            {"prompt": "waves rolling in", "duration": 10, "resolution": "480P", "aspect_ratio": "9:16"},
        )
        assert (await fake.wait_for_callback(interaction)).json["type"] == DEFERRED
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
        await world.settle(bot)
    assert (job.status, job.media, job.video_seconds, job.video_resolution) == (
        JobStatus.DELIVERED,
        "video",
        10,
        "480P",
    )
    [submit] = video_submits(world)
    assert submit.json == {
        "prompt": "waves rolling in",
        "model": "grok-imagine-video",
        "duration": 10,
        "aspectRatio": "9:16",
        "resolution": "480P",
    }
    assert world.submits() == []  # not an image task
    post, data = posted_mp4(world)
    facts = read_mp4(data)
    assert abs(facts.duration - 10) < 0.5
    assert facts.height > facts.width  # 9:16
    assert "Here is your video" in post.json["content"] and "10 s" in post.json["content"]
    assert labels(post.json) == ["Delete"]  # a video is not animated or edited again
    # The status message told the cost from the acknowledgement on.
    edits = status_texts(world, interaction)
    assert any("10 s video" in e and "counts as 5 images" in e for e in edits), edits


async def test_the_video_eta_is_learned_apart_from_images(world: World) -> None:
    fake = world.fake
    async with world.bot(default_daily_quota=100) as bot:  # five videos count as 15 images
        # Five quick images, then five slower videos (the ETA needs five of a kind).
        for n, (command, seconds) in enumerate([("imagine", 0.1)] * 5 + [("animate", 1.2)] * 5, start=1):
            world.sandbox.config.duration = seconds
            await fake.invoke_slash(command, {"prompt": f"take {n}"})
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=n, timeout=20)
        image_eta, video_eta = bot.runner.typical_duration("text"), bot.runner.typical_duration("video")
        await world.settle(bot)
    assert image_eta is not None and video_eta is not None
    assert image_eta < 1.0 <= video_eta  # neither pulled towards the other
    async with world.bot(default_daily_quota=100) as bot:  # learned again from the database after a restart
        assert bot.runner.typical_duration("video") == pytest.approx(video_eta)
        assert bot.runner.typical_duration("text") == pytest.approx(image_eta)


# -- the Animate button under an image --------------------------------------------------------------------


async def test_the_animate_button_turns_the_posted_image_into_a_video(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await fake.invoke_slash("imagine", {"prompt": "a lighthouse at dusk", "aspect_ratio": "3:2"})
        await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
        [image_post] = world.bot_posts()
        assert "Animate" in labels(image_post.json)
        assert "imagine:animate:1:1" in custom_ids(image_post.json)
        posted = next(m for m in fake.messages.values() if m.get("attachments") and m["author"]["bot"])
        click = await fake.invoke_component("imagine:animate:1:1", int(posted["id"]))
        dialog = (await fake.wait_for_callback(click)).json
        assert dialog["type"] == MODAL
        inputs = [c for row in dialog["data"]["components"] for c in row["components"]]
        assert inputs[0]["value"] == "a lighthouse at dusk"  # the image's prompt, editable
        assert "6 s = 3 images" in inputs[1]["placeholder"]
        submitted = await fake.submit_modal(
            dialog["data"]["custom_id"],
            {inputs[0]["custom_id"]: "the beam sweeps the sea", inputs[1]["custom_id"]: "6"},
        )
        assert (await fake.wait_for_callback(submitted)).json["type"] == DEFERRED
        video = await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=2, timeout=20)
        await world.settle(bot)
    assert (video.media, video.source_job_id, video.source_image_index) == ("video", 1, 1)
    [submit] = video_submits(world)
    # From an image: no aspect ratio or resolution, the image is the reference.
    assert set(submit.json) == {"prompt", "model", "duration", "images"}
    assert submit.json["prompt"] == "the beam sweeps the sea" and submit.json["duration"] == 6
    [image_url] = submit.json["images"]
    assert posted["attachments"][0]["filename"] in image_url
    _, video_post = world.bot_posts()
    [upload] = video_post.files
    facts = read_mp4(upload.data)
    assert abs(facts.duration - 6) < 0.5
    assert facts.width > facts.height  # the image's 3:2 shape


async def test_the_animate_button_survives_a_restart(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await fake.invoke_slash("imagine", {"prompt": "a cat"})
        await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
        await world.settle(bot)
    posted = next(m for m in fake.messages.values() if m.get("attachments") and m["author"]["bot"])
    async with world.bot():
        click = await fake.invoke_component("imagine:animate:1:1", int(posted["id"]))
        assert (await fake.wait_for_callback(click)).json["type"] == MODAL


# -- the message menu -------------------------------------------------------------------------------------


async def test_the_menu_animates_a_members_image_with_no_default_prompt(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        post = await fake.post_as_member("my drawing", images=[("me.png", png_bytes((60, 40), "red"))])
        opened = await fake.invoke_message_command(MENU, int(post["id"]))
        dialog = (await fake.wait_for_callback(opened)).json
        assert dialog["type"] == MODAL
        inputs = [c for row in dialog["data"]["components"] for c in row["components"]]
        assert not inputs[0].get("value")  # the image's prompt is unknown: no default
        submitted = await fake.submit_modal(
            dialog["data"]["custom_id"], {inputs[0]["custom_id"]: "it waves", inputs[1]["custom_id"]: "15"}
        )
        assert (await fake.wait_for_callback(submitted)).json["type"] == DEFERRED
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
        await world.settle(bot)
    assert (job.media, job.video_seconds) == ("video", 15)
    _, data = posted_mp4(world)
    assert abs(read_mp4(data).duration - 15) < 0.5


async def test_the_menu_on_a_message_without_an_image_is_refused_privately(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        post = await fake.post_as_member("a file", images=[("notes.pdf", b"%PDF-1.4 hello")])
        opened = await fake.invoke_message_command(MENU, int(post["id"]))
        text = private_answer(await fake.wait_for_callback(opened))
        await world.settle(bot)
    assert "has no image to animate" in text or "not an image" in text
    assert video_submits(world) == []


# -- bad input, switches and costs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "attachment", "expected"),
    [
        ({"prompt": "x" * (MAX_MOTION_PROMPT_CHARS + 1)}, None, "the limit for videos is 1,000"),
        ({"prompt": "waves", "resolution": "480P"}, ("photo.png", "image/png"), "takes the image's size"),
        ({"prompt": "waves"}, ("clip.pdf", "application/pdf"), "not a supported image"),
    ],
)
async def test_bad_input_is_refused_privately_before_anything_is_billed(
    world: World, options: dict[str, Any], attachment: tuple[str, str] | None, expected: str
) -> None:
    fake = world.fake
    attachments = {"image": fake.make_attachment(*attachment)} if attachment else None
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("animate", options, attachments=attachments)
        text = private_answer(await fake.wait_for_callback(interaction))
        await world.settle(bot)
        assert await usage_units(world, bot) == 0
    assert expected in text
    assert video_submits(world) == []


async def test_a_duration_not_offered_is_refused_in_the_dialog(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        post = await fake.post_as_member("mine", images=[("me.png", png_bytes((40, 40), "blue"))])
        opened = await fake.invoke_message_command(MENU, int(post["id"]))
        dialog = (await fake.wait_for_callback(opened)).json
        inputs = [c for row in dialog["data"]["components"] for c in row["components"]]
        submitted = await fake.submit_modal(
            dialog["data"]["custom_id"], {inputs[0]["custom_id"]: "spin", inputs[1]["custom_id"]: "7"}
        )
        text = private_answer(await fake.wait_for_callback(submitted))
        await world.settle(bot)
    assert "must be one of 6, 10, 15 seconds" in text
    assert video_submits(world) == []


async def test_a_server_can_turn_videos_off(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        switched = await fake.invoke_slash(
            "imagine-admin", {"state": "off"}, subcommand="videos", user_id=fake.moderator_id
        )
        assert "Videos are off" in private_answer(await fake.wait_for_callback(switched))
        refused = await fake.invoke_slash("animate", {"prompt": "waves"})
        text = private_answer(await fake.wait_for_callback(refused))
        logged = await bot.store.backend.run(
            lambda s: s.rows("SELECT actor_id, details FROM admin_log WHERE action = 'policy'", {})
        )
        await world.settle(bot)
    assert "Videos are turned off" in text
    assert video_submits(world) == []
    # Recorded like the other admin commands: who changed what.
    assert [(actor, '"videos_enabled": false' in details) for actor, details in logged] == [
        (fake.moderator_id, True)
    ]


async def test_the_server_sets_what_a_second_of_video_costs(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        default = await fake.invoke_slash(
            "imagine-admin",
            {"images_per_second": 0.5},
            subcommand=["cost", "video"],
            user_id=fake.moderator_id,
        )
        assert "6 s = 3 images · 10 s = 5 · 15 s = 8" in private_answer(await fake.wait_for_callback(default))
        dearer = await fake.invoke_slash(
            "imagine-admin",
            {"images_per_second": 1.0},
            subcommand=["cost", "video"],
            user_id=fake.moderator_id,
        )
        assert "6 s = 6 images · 10 s = 10 · 15 s = 15" in private_answer(
            await fake.wait_for_callback(dearer)
        )
        policy = await bot.store.settings.guild_policy(fake.guild_id)
        await world.settle(bot)
    assert policy.video_rate == 1.0


# -- faults: the result, the upload limit ------------------------------------------------------------------


async def test_a_result_that_is_not_a_video_is_refused_and_refunded(world: World) -> None:
    fake = world.fake
    # A real PNG on an allowed host (the fake Discord's CDN): fetched, and refused by its bytes.
    picture = fake.make_attachment("still.png")["url"]
    world.sandbox.force_next("completed", result={"video_url": picture})
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("animate", {"prompt": "waves"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
        await world.settle(bot)
        assert await usage_units(world, bot) == 0
    assert job.status is JobStatus.FAILED
    assert world.bot_posts() == []  # nothing posted
    told = status_texts(world, interaction)[-1]
    assert "the link did not lead to a video" in told and "does not count against your quota" in told
    assert picture not in told  # never a link as the result


async def test_a_result_on_an_internal_address_is_never_fetched(world: World) -> None:
    fake = world.fake
    internal = "http://10.1.2.3/video.mp4"
    world.sandbox.force_next("completed", result={"video_url": internal})
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("animate", {"prompt": "waves"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
        await world.settle(bot)
        assert await usage_units(world, bot) == 0
    assert job.status is JobStatus.FAILED
    told = status_texts(world, interaction)[-1]
    assert "not on a public address" in told and internal not in told
    # Never fetched: the address was refused before any connection.
    assert not any("10.1.2.3" in r.path for r in fake.requests)


async def test_a_video_over_the_upload_limit_is_reencoded_to_fit(world: World, upload_limit: Any) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await fake.invoke_slash("animate", {"prompt": "waves", "duration": 6})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING, timeout=20)
        original = world.sandbox.video_bytes(job.task_id or "")
        upload_limit(len(original) * 2 // 3)
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=30)
        await world.settle(bot)
    assert job.status is JobStatus.DELIVERED
    post, data = posted_mp4(world)
    assert len(data) <= len(original) * 2 // 3 < len(original)
    assert abs(read_mp4(data).duration - 6) < 0.5  # still the whole clip
    assert "Re-encoded to fit" in post.json["content"]


async def test_a_video_that_cannot_fit_is_explained_and_refunded(world: World, upload_limit: Any) -> None:
    fake = world.fake
    upload_limit(2_000)
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("animate", {"prompt": "waves", "duration": 6})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=30)
        await world.settle(bot)
        assert await usage_units(world, bot) == 0
    assert job.status is JobStatus.FAILED
    assert world.bot_posts() == []
    content = status_texts(world, interaction)[-1]
    assert "could not be made small enough" in content and "A shorter clip, or 480P" in content


# -- restarts ---------------------------------------------------------------------------------------------


async def test_a_restart_mid_video_delivers_it_once(world: World) -> None:
    fake = world.fake
    world.sandbox.config.duration = 1.5
    async with world.bot() as bot:
        await fake.invoke_slash("animate", {"prompt": "slow waves"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING, timeout=20)
    async with world.bot() as bot:
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=30)
        await world.settle(bot)
    assert job.status is JobStatus.DELIVERED
    assert len(video_submits(world)) == 1  # followed, never sent again
    _, data = posted_mp4(world)
    assert abs(read_mp4(data).duration - 6) < 0.5


async def test_a_member_without_enough_left_is_refused_with_the_cost(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        limit = await fake.invoke_slash(
            "imagine-admin", {"limit": 4}, subcommand=["quota", "default"], user_id=fake.moderator_id
        )
        await fake.wait_for_callback(limit)
        refused = await fake.invoke_slash("animate", {"prompt": "waves", "duration": 10})
        text = private_answer(await fake.wait_for_callback(refused))
        # A 6 s clip (3 images) fits and counts as 3.
        fits = await fake.invoke_slash("animate", {"prompt": "waves", "duration": 6})
        assert (await fake.wait_for_callback(fits)).json["type"] == DEFERRED
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
        await world.settle(bot)
        assert await usage_units(world, bot) == 3
        rows = await bot.store.usage.export(fake.guild_id, 0, 1e12, 10)
    # The usage log (and its CSV export) says which rows are videos and how long.
    exported = [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows]
    assert sorted((r["outcome"], r["media"], r["video_seconds"]) for r in exported) == [
        ("completed", "video", 6),
        ("refused", "video", 10),
    ]
    assert "4 images left today" in text and "needs 5" in text
    assert job.units == 3
    assert len(video_submits(world)) == 1
