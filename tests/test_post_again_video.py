"""/history's Post again for a video (Animate's clips): the MP4 is fetched from its Discord message
through the safe fetch and MP4 check a finished video goes through, and posted again as a playable .mp4;
when the server's upload limit has fallen below it, the member is told privately why and what to do."""

from __future__ import annotations

from typing import Any

from bot.core.models import Job, JobStatus
from testing.mp4_boxes import read_mp4
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.test_animate import custom_ids, labels, upload_limit  # noqa: F401 - upload_limit is a fixture
from tests.test_private_post_again import history


async def animated(world: World, bot: Any, seconds: int = 6) -> tuple[Job, bytes]:
    """A clip made with /animate and posted in the channel: its job and the MP4 the channel shows."""
    await world.fake.invoke_slash("animate", {"prompt": "waves rolling in", "duration": seconds})
    job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=30)
    await world.settle(bot)
    assert (job.status, job.media) == (JobStatus.DELIVERED, "video")
    [(name, data)] = world.fake.message_files(job.result_message_id or 0)
    assert name == f"imagine-{job.id}-1.mp4"
    return job, data


async def test_post_again_posts_the_video_as_a_playable_mp4_after_a_restart(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        job, original = await animated(world, bot)
        message_id, shown = await history(world, fake.user_id)
        assert custom_ids(shown)[:1] == [f"imagine:repost:{job.id}"]
    async with world.bot() as bot:  # the button needs nothing the first process held
        click = await fake.invoke_component(f"imagine:repost:{job.id}", message_id)
        await fake.wait_for_callback(click)
        await world.settle(bot)
        repost = fake.messages[click.original_message_id or 0]
        files = fake.message_files(int(repost["id"]))
    assert not repost["flags"] & EPHEMERAL  # a public clip is posted again in the channel
    assert [name for name, _ in files] == [f"imagine-{job.id}-1.mp4"]
    [(_, data)] = files
    assert data == original and abs(read_mp4(data).duration - 6) < 0.5  # the same playable clip
    assert f"🎬 Video #{job.id} by <@{fake.user_id}>" in repost["content"]
    assert labels(repost) == ["Delete"]  # as under the clip: a video is not edited or animated again


async def test_a_video_over_the_upload_limit_now_is_refused_privately_with_what_to_do(
    world: World,
    upload_limit: Any,  # noqa: F811 - the fixture
) -> None:
    fake = world.fake
    async with world.bot() as bot:
        job, original = await animated(world, bot)
        public_before = len([m for m in fake.messages.values() if not m["flags"] & EPHEMERAL])
        upload_limit(2_000)  # the server lost its boost: far less than the clip, even re-encoded
        message_id, _ = await history(world, fake.user_id)
        click = await fake.invoke_component(f"imagine:repost:{job.id}", message_id)
        await fake.wait_for_callback(click)
        told = await fake.wait_for_request(
            lambda r: r.method == "POST" and r.path.startswith("/webhooks/") and f"/{click.token}" in r.path
        )
        await world.settle(bot)
    assert not told.files
    # The public "thinking…" message is gone; what is left is a private answer.
    assert (click.original_message_id or 0) not in fake.messages
    [answer] = [
        m for m in fake.messages.values() if m["flags"] & EPHEMERAL and "posted again" in m["content"]
    ]
    content = answer["content"]
    assert f"is {len(original) / 1024 / 1024:.1f} MB, more than the 0 MB" in content  # 2,000 bytes
    assert "cannot be posted again" in content and "linked in /history" in content
    public = [m for m in fake.messages.values() if not m["flags"] & EPHEMERAL]
    assert len(public) == public_before  # no clip, no refusal in the channel
