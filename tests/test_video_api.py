"""The video route over real HTTP (issue 21): the client asks the sandbox for a clip, follows it with
the same poll as an image, finds the link in whatever shape the result takes, and the link gives a real
MP4 of the asked length and shape. Bad requests are refused by the sandbox as the contract says."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bot.adapters.image_api import ImageApi, RefusedError, extract_videos
from sandbox.server import Sandbox, SandboxConfig
from testing.mp4_boxes import read_mp4
from tests.helpers import wait_until

KEY = "sandbox-key"


async def finished(api: ImageApi, task_id: str) -> Any:
    async def final() -> Any:
        status = await api.poll(task_id)
        return status if status.is_final else None

    status = await wait_until(final, f"task {task_id} to end", timeout=20, interval=0.05)
    assert status.status == "completed", status
    return status.result


@pytest.mark.parametrize("shape", ["urls", "objects", "data", "nested"])
async def test_a_clip_is_asked_for_followed_and_fetched_as_a_real_mp4(shape: str) -> None:
    sandbox = Sandbox(SandboxConfig(duration=0.2, seed=3, result_shape=shape))  # type: ignore[arg-type]
    await sandbox.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = ImageApi(session, sandbox.base_url or "", KEY, "grok-imagine-image")
            task_id = await api.submit_video(
                "waves roll in", duration=6, aspect_ratio="9:16", resolution="480P"
            )
            sent = sandbox.requests[-1]
            assert sent.path == "/xai/videos"
            assert sent.json == {
                "prompt": "waves roll in",
                "model": "grok-imagine-video",
                "duration": 6,
                "aspectRatio": "9:16",
                "resolution": "480P",
            }
            [link] = extract_videos(await finished(api, task_id))
            async with session.get(link) as response:
                assert response.status == 200 and response.content_type == "video/mp4"
                data = await response.read()
    finally:
        await sandbox.stop()
    facts = read_mp4(data)
    assert abs(facts.duration - 6) < 0.5 and facts.height > facts.width
    assert abs(facts.width / facts.height - 9 / 16) < 0.03


async def test_from_an_image_the_clip_takes_the_images_shape_and_sends_no_ratio(sandbox: Sandbox) -> None:
    reference = sandbox.image_url(sandbox.base_url or "", await _image_task(sandbox))
    async with aiohttp.ClientSession() as session:
        api = ImageApi(session, sandbox.base_url or "", KEY, "grok-imagine-image")
        task_id = await api.submit_video(
            "the sea moves", duration=10, aspect_ratio="16:9", resolution="720P", image=reference
        )
        body = next(r.json for r in reversed(sandbox.requests) if r.path == "/xai/videos")
        assert body["images"] == [reference] and "aspectRatio" not in body and "resolution" not in body
        [link] = extract_videos(await finished(api, task_id))
        async with session.get(link) as response:
            facts = read_mp4(await response.read())
    assert abs(facts.duration - 10) < 0.5
    assert sandbox.tasks[task_id].video is not None


async def _image_task(sandbox: Sandbox) -> str:
    async with aiohttp.ClientSession() as session:
        api = ImageApi(session, sandbox.base_url or "", KEY, "grok-imagine-image")
        task_id = await api.submit("a square picture", "1:1")
        await finished(api, task_id)
    return task_id


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"duration": 7}, "duration must be one of"),
        ({"resolution": "1080P"}, "resolution must be one of"),
        ({"prompt": "x" * 1001}, "at most 1000 characters"),
        ({"aspectRatio": "4:3"}, "aspectRatio must be one of"),
    ],
)
async def test_what_the_contract_forbids_is_refused_with_a_400(
    sandbox: Sandbox, fields: dict[str, Any], words: str
) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"prompt": "waves", "model": "grok-imagine-video", "duration": 6, **fields}
        async with session.post(
            f"{sandbox.base_url}/xai/videos", json=body, headers={"Authorization": f"Bearer {KEY}"}
        ) as response:
            assert response.status == 400 and words in (await response.json())["message"]
        api = ImageApi(session, sandbox.base_url or "", KEY, "grok-imagine-image")
        with pytest.raises(RefusedError):
            await api.submit_video("waves", duration=7)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"video_url": "https://cdn.example/v.mp4"}, ["https://cdn.example/v.mp4"]),
        ({"videos": [{"url": "https://cdn.example/a"}]}, ["https://cdn.example/a"]),
        (
            {"thumbnail": "https://cdn.example/t.png", "output": {"file": "https://cdn.example/c.mp4?s=1"}},
            ["https://cdn.example/c.mp4?s=1", "https://cdn.example/t.png"],
        ),
        ({"status": "done"}, []),
        (None, []),
    ],
)
def test_video_links_are_found_in_any_shape_likeliest_first(result: Any, expected: list[str]) -> None:
    assert extract_videos(result) == expected
