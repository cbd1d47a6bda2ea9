"""What the member is told when a job ends: failures, time-outs, refused channels, big images."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from PIL import Image

from bot.adapters.store import jobs_repo
from bot.core.models import JobStatus
from tests.bot_harness import World, wait_for_job
from tests.helpers import FAST_RUNNER


def status_edits(world: World, token: str) -> list[str]:
    return [
        str(r.json.get("content", ""))
        for r in world.fake.requests
        if r.method == "PATCH" and f"/{token}/messages/" in r.path and isinstance(r.json, dict)
    ]


async def test_failed_task_tells_the_member_the_reason(world: World) -> None:
    world.sandbox.force_next(
        "failed", error_message="Prompt rejected by <b>safety</b> @everyone", error_code=400
    )
    async with world.bot() as bot:
        interaction = await world.fake.invoke_slash("imagine", {"prompt": "something"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.FAILED
    final = status_edits(world, interaction.token)[-1]
    assert "no image this time" in final and "Prompt rejected by" in final
    assert "@everyone" not in final and "Traceback" not in final
    assert world.bot_posts() == []  # a failure edits the status message, it does not add noise


async def test_completed_task_without_image_is_explained(world: World) -> None:
    world.sandbox.force_next("completed", result={"images": []})
    async with world.bot() as bot:
        interaction = await world.fake.invoke_slash("imagine", {"prompt": "nothing"})
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert "returned no image" in status_edits(world, interaction.token)[-1]


async def test_timed_out_job_is_explained(world: World) -> None:
    world.sandbox.force_next(never_finish=True)
    async with world.bot(runner_config=replace(FAST_RUNNER, time_limit=0.5)) as bot:
        interaction = await world.fake.invoke_slash("imagine", {"prompt": "forever"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.TIMED_OUT
    edits = status_edits(world, interaction.token)
    assert "stopped waiting" in edits[-1]
    assert any("Rendering" in text for text in edits)  # the member saw it render meanwhile


async def test_forbidden_channel_still_tells_the_member_through_the_interaction(world: World) -> None:
    fake = world.fake
    fake.forbid_channel_posts(fake.channel_id)
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "secret garden"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.DELIVERED and job.delivery == "interaction"
    original = fake.messages[interaction.original_message_id or 0]
    assert "secret garden" in original["content"]
    [attachment] = original["attachments"]
    assert fake.attachment_bytes(attachment) == world.sandbox.image_bytes(next(iter(world.sandbox.tasks)))


async def test_forbidden_channel_after_the_token_expired_goes_to_a_dm(world: World) -> None:
    fake = world.fake
    fake.forbid_channel_posts(fake.channel_id)
    world.sandbox.config.duration = 0.6
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "late"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        # Fifteen minutes pass: the row's expiry is what the bot goes by.
        await bot.store.backend.run(jobs_repo.update_job, 1, {"token_expires_at": 0.0})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.delivery == "dm"
    dm = fake.dm_channel(fake.user_id)
    dm_posts = [r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{dm}/messages"]
    assert len(dm_posts) == 1 and dm_posts[0].files
    assert not any(
        f"/{interaction.token}/" in r.path for r in fake.requests if r.method == "PATCH" and r.files
    )


async def test_expired_token_delivers_with_a_channel_message(world: World) -> None:
    fake = world.fake
    world.sandbox.config.duration = 0.6
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "patience"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        # The job turns RUNNING just before its "Submitted" edit goes out: let that edit land first.
        await fake.wait_for_request(
            lambda r: r.method == "PATCH" and "Submitted" in str((r.json or {}).get("content"))
        )
        await bot.store.backend.run(jobs_repo.update_job, 1, {"token_expires_at": 0.0})
        edits_before = len(status_edits(world, interaction.token))
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.delivery == "channel"
    [post] = world.bot_posts()
    assert post.files and "patience" in post.json["content"]
    assert len(status_edits(world, interaction.token)) == edits_before  # no webhook use after expiry


async def test_image_over_the_upload_limit_is_reencoded_to_fit(world: World) -> None:
    world.sandbox.config.big_images = True
    limit = world.fake.guilds[world.fake.guild_id].filesize_limit
    async with world.bot() as bot:
        await world.fake.invoke_slash("imagine", {"prompt": "noise", "aspect_ratio": "1:1"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
    assert job.delivery == "channel"
    original = world.sandbox.image_bytes(next(iter(world.sandbox.tasks)))
    assert len(original) > limit
    [post] = world.bot_posts()
    [upload] = post.files
    assert len(upload.data) <= limit
    assert upload.filename.endswith(".jpg")
    with Image.open(io.BytesIO(upload.data)) as image:
        assert image.format == "JPEG"


async def test_unreachable_result_is_posted_as_a_link_with_an_explanation(world: World) -> None:
    dead = f"{world.sandbox.base_url}/sandbox/images/no-such-task/0.png"
    world.sandbox.force_next("completed", result={"images": [dead]})
    async with world.bot() as bot:
        await world.fake.invoke_slash("imagine", {"prompt": "gone"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
    [post] = world.bot_posts()
    assert dead in post.json["content"] and "could not be uploaded" in post.json["content"]
    assert job.status is JobStatus.DELIVERED


async def test_no_message_of_the_bot_can_ping(world: World) -> None:
    async with world.bot() as bot:
        await world.fake.invoke_slash("imagine", {"prompt": "@everyone <@&123> <@456> look"})
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
    sent = [
        r
        for r in world.fake.requests
        if r.method in {"POST", "PATCH"} and isinstance(r.json, dict) and "content" in r.json
    ]
    assert sent
    for request in sent:
        assert request.json.get("allowed_mentions", {}).get("parse") == [], request.path
        assert "@everyone" not in request.json["content"]


async def test_status_message_deleted_midway_still_delivers(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    fake = world.fake
    world.sandbox.config.duration = 0.8
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "mind the gap"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        del fake.messages[interaction.original_message_id or 0]  # a moderator removed it
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.DELIVERED and job.delivery == "channel"
    assert len(world.bot_posts()) == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR" and r.name.startswith("bot")]
