"""/imagine end to end: the real bot, the fake Discord, the sandbox API, a real SQLite file."""

from __future__ import annotations

import io

from PIL import Image

from bot.core.models import JobStatus
from tests.bot_harness import World, wait_for_job

DEFERRED = 5


async def test_imagine_delivers_the_sandbox_png_to_the_channel(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        interaction = await fake.invoke_slash(
            "imagine", {"prompt": "a red fox in snow", "aspect_ratio": "16:9"}
        )
        callback = await fake.wait_for_callback(interaction)
        assert callback.json["type"] == DEFERRED
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)

    [submit] = world.submits()
    assert submit.json == {
        "prompt": "a red fox in snow",
        "model": "grok-imagine-image",
        "aspectRatio": "16:9",
    }
    assert submit.authorization == "Bearer sandbox-key"

    [post] = world.bot_posts()
    [upload] = post.files
    task_id = next(iter(world.sandbox.tasks))
    assert upload.data == world.sandbox.image_bytes(task_id)
    with Image.open(io.BytesIO(upload.data)) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1]
    content = post.json["content"]
    assert "a red fox in snow" in content and "16:9" in content and f"<@{fake.user_id}>" in content
    assert post.json["allowed_mentions"]["parse"] == []
    assert int(post.json["message_reference"]["message_id"]) == interaction.original_message_id

    assert job.task_id == task_id and job.delivery == "channel"
    assert job.result_message_id is not None and job.delivered_at is not None
    assert job.interaction_token is None  # dropped once delivered
    # The status message ends as a pointer to the image.
    original = fake.messages[interaction.original_message_id or 0]
    assert "Done" in original["content"] and str(job.result_message_id) in original["content"]
