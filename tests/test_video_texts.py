"""What the member reads about a video while it is uploaded, once it is posted and when it fails: the
status message says "video" where it means the clip, in English and in Simplified Chinese (a video's
cost is still told in images: that is the unit quotas count)."""

from __future__ import annotations

import pytest

from bot.core import messages
from bot.core.models import JobStatus, Stage
from tests.bot_harness import World, wait_for_job
from tests.test_animate import status_texts

LANGUAGES = [
    ("en-US", "uploading the video for", "your video is here", "no video this time", "made a video"),
    ("zh-CN", "正在上传 {who} 的视频", "你的视频在这里", "这次没能生成视频", "生成了一段视频"),
]


@pytest.mark.parametrize(("guild_locale", "uploading", "done", "failed", "modlog"), LANGUAGES)
async def test_the_status_message_of_a_video_speaks_of_the_video(
    world: World, guild_locale: str, uploading: str, done: str, failed: str, modlog: str
) -> None:
    fake = world.fake
    fake.guilds[fake.guild_id].locale = guild_locale  # the status message is in the server's language
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("animate", {"prompt": "waves", "duration": 6})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=30)
        await world.settle(bot)
    assert job.status is JobStatus.DELIVERED
    assert done in status_texts(world, interaction)[-1]
    # The upload stage passes too quickly to be caught on the fake: its text, for this very job.
    who = f"<@{fake.user_id}>"
    shown = messages.status_text(job, Stage.DELIVERING, 60.0, None, locale=guild_locale)
    assert uploading.format(who=who) in shown
    assert modlog in messages.modlog_finished(job, "https://discord.com/x", guild_locale)


@pytest.mark.parametrize(("guild_locale", "uploading", "done", "failed", "modlog"), LANGUAGES)
async def test_a_failed_video_says_no_video(
    world: World, guild_locale: str, uploading: str, done: str, failed: str, modlog: str
) -> None:
    fake = world.fake
    fake.guilds[fake.guild_id].locale = guild_locale
    picture = fake.make_attachment("still.png")["url"]  # not a clip: refused by its bytes
    world.sandbox.force_next("completed", result={"video_url": picture})
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("animate", {"prompt": "waves"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None, timeout=20)
        await world.settle(bot)
    assert job.status is JobStatus.FAILED
    assert failed in status_texts(world, interaction)[-1]
