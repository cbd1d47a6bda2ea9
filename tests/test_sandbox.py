"""The offline API stand-in, driven over real HTTP on 127.0.0.1 (a fake clock avoids sleeping)."""

from __future__ import annotations

import asyncio
import base64
import io
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from PIL import Image

from sandbox.server import ASPECT_RATIO_SIZES, Sandbox, SandboxConfig, log_uniform

AUTH = {"Authorization": "Bearer sandbox-key"}
GOOD = {"prompt": "a lighthouse in a storm", "model": "grok-imagine-image"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MakeSandbox = Callable[..., Awaitable[tuple[Sandbox, str]]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_sandbox(clock: FakeClock) -> AsyncIterator[MakeSandbox]:
    started: list[Sandbox] = []

    async def make(**overrides: Any) -> tuple[Sandbox, str]:
        overrides.setdefault("clock", clock)
        # These tests carry made-up reference links; fetching them is tested in test_sandbox_references.
        overrides.setdefault("check_references", False)
        sandbox = Sandbox(SandboxConfig(**overrides))
        base_url = await sandbox.start()
        started.append(sandbox)
        return sandbox, base_url

    yield make
    for sandbox in started:
        await sandbox.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def submit(http: aiohttp.ClientSession, base_url: str, **fields: Any) -> str:
    async with http.post(f"{base_url}/xai/images", json={**GOOD, **fields}, headers=AUTH) as response:
        assert response.status == 200, await response.text()
        task_id = (await response.json())["taskId"]
    assert isinstance(task_id, str)
    return task_id


async def poll(http: aiohttp.ClientSession, base_url: str, task_id: str) -> dict[str, Any]:
    async with http.get(f"{base_url}/xai/tasks", params={"taskId": task_id}, headers=AUTH) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
    return body


async def fetch_png(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        return await response.read()


def png_size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


# ----- key, validation, lookups -----


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic sandbox-key"},
        {"Authorization": "Bearer"},
    ],
)
async def test_refuses_missing_or_wrong_key(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    sandbox, base_url = await make_sandbox()
    async with http.post(f"{base_url}/xai/images", json=GOOD, headers=headers) as response:
        assert response.status == 401
        body = await response.json()
    assert body["code"] == 401 and "API key" in body["message"]
    async with http.get(f"{base_url}/xai/tasks", params={"taskId": "x"}, headers=headers) as response:
        assert response.status == 401
    assert sandbox.task_count == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([GOOD], "JSON object"),
        ("not json at all", "JSON object"),
        ({"model": "grok-imagine-image"}, "prompt"),
        ({**GOOD, "prompt": 42}, "prompt"),
        ({**GOOD, "prompt": "  \n\t "}, "prompt"),
        ({**GOOD, "prompt": "x" * 5001}, "5000"),
        ({"prompt": "cat"}, "model"),
        ({**GOOD, "model": "dall-e-3"}, "model"),
        ({**GOOD, "aspectRatio": "4:3"}, "aspectRatio"),
        ({**GOOD, "model": ["grok-imagine-image"]}, "model"),
        ({**GOOD, "aspectRatio": None}, "aspectRatio"),
        ({**GOOD, "aspectRatio": {"w": 16}}, "aspectRatio"),
        ({**GOOD, "images": "https://example.com/a.png"}, "images"),
        ({**GOOD, "images": [f"https://example.com/{i}.png" for i in range(6)]}, "images"),
        ({**GOOD, "images": ["ftp://example.com/a.png"]}, "images[0]"),
        ({**GOOD, "images": ["https://example.com/a.png", 7]}, "images[1]"),
        ({**GOOD, "images": ["not a url"]}, "images[0]"),
    ],
)
async def test_refuses_bad_fields_with_a_message(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, body: object, field: str
) -> None:
    sandbox, base_url = await make_sandbox()
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, str) else {"json": body}
    async with http.post(f"{base_url}/xai/images", headers=AUTH, **kwargs) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer["code"] == 400 and field in answer["message"]
    assert sandbox.task_count == 0


async def test_accepts_the_limits(make_sandbox: MakeSandbox, http: aiohttp.ClientSession) -> None:
    sandbox, base_url = await make_sandbox()
    refs = [f"https://example.com/{i}.png" for i in range(5)]
    await submit(http, base_url, prompt="y" * 5000, images=refs, aspectRatio="2:3", extra="ignored")
    await submit(http, base_url, images=[])
    assert sandbox.task_count == 2


async def test_poll_unknown_or_missing_task(make_sandbox: MakeSandbox, http: aiohttp.ClientSession) -> None:
    _, base_url = await make_sandbox()
    async with http.get(f"{base_url}/xai/tasks", params={"taskId": "nope"}, headers=AUTH) as response:
        assert response.status == 404
        assert (await response.json())["code"] == 404
    async with http.get(f"{base_url}/xai/tasks", headers=AUTH) as response:
        assert response.status == 400


# ----- the task lifecycle -----


async def test_task_moves_to_completed_with_a_16_9_png(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sandbox, base_url = await make_sandbox(duration=4.0, processing_after=0.25)
    task_id = await submit(http, base_url, aspectRatio="16:9")
    created = clock.now

    first = await poll(http, base_url, task_id)
    assert first["status"] == "pending"
    assert first["result"] is None and first["finishedAt"] is None and first["errorMessage"] is None
    assert first["taskId"] == task_id and first["traceId"]
    assert datetime.fromisoformat(first["createdAt"]).utcoffset() is not None
    assert sandbox.completed_at(task_id) is None

    clock.advance(1.5)
    assert (await poll(http, base_url, task_id))["status"] == "processing"
    async with http.get(sandbox.image_url(base_url, task_id)) as early:
        assert early.status == 404  # no image before the task completes

    clock.advance(3.0)
    done = await poll(http, base_url, task_id)
    assert done["status"] == "completed" and done["errorCode"] is None
    created_at, finished_at = (datetime.fromisoformat(done[key]) for key in ("createdAt", "finishedAt"))
    assert (finished_at - created_at).total_seconds() == pytest.approx(4.0, abs=0.01)
    assert sandbox.completed_at(task_id) == pytest.approx(created + 4.0)

    [url] = done["result"]["images"]
    assert url == f"{base_url}/sandbox/images/{task_id}/0.png"
    png = await fetch_png(http, url)
    assert png_size(png) == (768, 432)
    assert png == sandbox.image_bytes(task_id)


@pytest.mark.parametrize(("ratio", "size"), list(ASPECT_RATIO_SIZES.items()))
async def test_placeholder_sizes(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, ratio: str, size: tuple[int, int]
) -> None:
    sandbox, base_url = await make_sandbox()
    task_id = await submit(http, base_url, aspectRatio=ratio)
    assert png_size(sandbox.image_bytes(task_id)) == size


async def test_reference_images_and_odd_prompts(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox, base_url = await make_sandbox()
    edit = await submit(http, base_url, images=["https://example.com/cat.png"])
    odd = await submit(http, base_url, prompt="猫 🐱 \x00 " + "w" * 4000, aspectRatio="9:16")
    assert png_size(sandbox.image_bytes(edit)) == (512, 512)
    assert png_size(sandbox.image_bytes(odd)) == (432, 768)
    assert sandbox.image_bytes(edit) != sandbox.image_bytes(odd)


async def test_images_are_deterministic_per_task(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession
) -> None:
    # Two sandboxes with one seed hand out the same task ids; their uncached images must match.
    (first, first_url), (second, second_url) = await make_sandbox(seed=5), await make_sandbox(seed=5)
    task_id = await submit(http, first_url)
    assert await submit(http, second_url) == task_id
    assert first.image_bytes(task_id) == second.image_bytes(task_id)


async def test_several_images_per_task(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sandbox, base_url = await make_sandbox(images_per_task=3)
    task_id = await submit(http, base_url)
    clock.advance(10)
    urls = (await poll(http, base_url, task_id))["result"]["images"]
    assert len(set(urls)) == 3
    pngs = [await fetch_png(http, url) for url in urls]
    assert pngs == [sandbox.image_bytes(task_id, n) for n in range(3)]
    assert len(set(pngs)) == 3
    async with http.get(sandbox.image_url(base_url, task_id, 3)) as response:
        assert response.status == 404


def _first_url(shape: str, result: dict[str, Any]) -> str | None:
    paths: dict[str, Callable[[dict[str, Any]], Any]] = {
        "urls": lambda r: r["images"][0],
        "objects": lambda r: r["images"][0]["url"],
        "data": lambda r: r["data"][0]["url"],
        "nested": lambda r: r["output"]["result"]["image_urls"][0],
    }
    return paths[shape](result) if shape in paths else None


@pytest.mark.parametrize("shape", ["urls", "objects", "data", "nested", "b64", "empty"])
async def test_result_shapes(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, clock: FakeClock, shape: str
) -> None:
    sandbox, base_url = await make_sandbox(result_shape=shape)
    task_id = await submit(http, base_url)
    clock.advance(10)
    body = await poll(http, base_url, task_id)
    assert body["status"] == "completed"
    result = body["result"]
    if shape == "empty":
        assert result == {}
    elif shape == "b64":
        [item] = result["data"]
        assert base64.b64decode(item["b64_json"]) == sandbox.image_bytes(task_id)
    else:
        url = _first_url(shape, result)
        assert url is not None
        assert await fetch_png(http, url) == sandbox.image_bytes(task_id)


async def test_public_base_url_builds_result_urls(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    _, base_url = await make_sandbox(public_base_url="https://sandbox.example.org/")
    task_id = await submit(http, base_url)
    clock.advance(10)
    [url] = (await poll(http, base_url, task_id))["result"]["images"]
    assert url == f"https://sandbox.example.org/sandbox/images/{task_id}/0.png"


async def test_failure_rate_one_fails_every_task(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sandbox, base_url = await make_sandbox(failure_rate=1.0, seed=7)
    task_ids = [await submit(http, base_url) for _ in range(3)]
    clock.advance(10)
    for task_id in task_ids:
        body = await poll(http, base_url, task_id)
        assert body["status"] == "failed" and body["result"] is None
        assert isinstance(body["errorMessage"], str) and body["errorMessage"]
        assert isinstance(body["errorCode"], int)
        assert body["finishedAt"] is not None
        async with http.get(sandbox.image_url(base_url, task_id)) as response:
            assert response.status == 404


# ----- test controls -----


async def test_force_next_queues_outcomes(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sandbox, base_url = await make_sandbox(failure_rate=1.0)
    sandbox.force_next("failed", error_message="NSFW content detected", error_code=4003)
    sandbox.force_next("cancelled")
    sandbox.force_next("timeout")
    sandbox.force_next(result={"weird": [{"href": "https://cdn.example/x.png"}]})
    sandbox.force_next(never_finish=True)
    sandbox.force_next("completed")
    task_ids = [await submit(http, base_url) for _ in range(7)]
    failed, cancelled, timed_out, raw, stuck, completed, unforced = task_ids
    clock.advance(1e6)

    body = await poll(http, base_url, failed)
    assert (body["status"], body["errorMessage"], body["errorCode"]) == (
        "failed",
        "NSFW content detected",
        4003,
    )
    for task_id, status in ((cancelled, "cancelled"), (timed_out, "timeout")):
        body = await poll(http, base_url, task_id)
        assert body["status"] == status and body["errorMessage"] and isinstance(body["errorCode"], int)
    body = await poll(http, base_url, raw)
    assert body["status"] == "completed"
    assert body["result"] == {"weird": [{"href": "https://cdn.example/x.png"}]}
    body = await poll(http, base_url, stuck)
    assert body["status"] == "processing" and body["finishedAt"] is None
    assert sandbox.completed_at(stuck) is None
    # A forced outcome beats the configured failure rate, and applies to one task only.
    assert (await poll(http, base_url, completed))["status"] == "completed"
    assert sandbox.status(unforced) == "failed"


async def test_fail_next_polls(make_sandbox: MakeSandbox, http: aiohttp.ClientSession) -> None:
    sandbox, base_url = await make_sandbox()
    task_id = await submit(http, base_url)
    sandbox.fail_next_polls(2, status=502)
    statuses = []
    for _ in range(3):
        async with http.get(f"{base_url}/xai/tasks", params={"taskId": task_id}, headers=AUTH) as response:
            statuses.append(response.status)
            if response.status != 200:
                assert (await response.json())["code"] == 502
    assert statuses == [502, 502, 200]
    sandbox.fail_next_polls(1)
    await submit(http, base_url)  # submits are not affected
    async with http.get(f"{base_url}/xai/tasks", params={"taskId": task_id}, headers=AUTH) as response:
        assert response.status == 503


async def test_rate_limit_next_sends_retry_after(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox, base_url = await make_sandbox()
    sandbox.rate_limit_next(2, retry_after=3)
    async with http.post(f"{base_url}/xai/images", json=GOOD) as response:
        assert response.status == 401  # the key check comes first and does not use up a 429
    async with http.post(f"{base_url}/xai/images", json=GOOD, headers=AUTH) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
        assert (await response.json())["code"] == 429
    async with http.get(f"{base_url}/xai/tasks", params={"taskId": "x"}, headers=AUTH) as response:
        assert response.status == 429
    assert sandbox.task_count == 0
    await submit(http, base_url)
    assert sandbox.task_count == 1


async def test_rate_limit_rate_one_limits_everything(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession
) -> None:
    _, base_url = await make_sandbox(rate_limit_rate=1.0, retry_after=2)
    async with http.post(f"{base_url}/xai/images", json=GOOD, headers=AUTH) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"


async def test_big_images_are_several_megabytes(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sandbox, base_url = await make_sandbox(big_images=True)
    task_id = await submit(http, base_url, aspectRatio="1:1")
    clock.advance(10)
    [url] = (await poll(http, base_url, task_id))["result"]["images"]
    png = await fetch_png(http, url)
    assert len(png) > 4 * 1024 * 1024
    assert png_size(png) == (2048, 2048)
    assert png == sandbox.image_bytes(task_id)


async def test_submit_delay_can_cut_a_submit_off(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox, base_url = await make_sandbox(submit_delay=0.3, clock=time.monotonic)
    started = time.monotonic()
    await submit(http, base_url)
    assert time.monotonic() - started >= 0.3
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            f"{base_url}/xai/images", json=GOOD, headers=AUTH, timeout=aiohttp.ClientTimeout(total=0.05)
        ):
            pass
    # The task was started before the answer was cut off, as a real gateway would have billed it.
    assert sandbox.task_count == 2


async def test_requests_are_recorded(make_sandbox: MakeSandbox, http: aiohttp.ClientSession) -> None:
    sandbox, base_url = await make_sandbox()
    before = time.monotonic()
    task_id = await submit(http, base_url, aspectRatio="3:2")
    await poll(http, base_url, task_id)
    posted, polled = sandbox.requests
    assert (posted.method, posted.path, posted.authorization) == ("POST", "/xai/images", "Bearer sandbox-key")
    assert posted.json == {**GOOD, "aspectRatio": "3:2"}
    assert posted.at >= before
    assert (polled.method, polled.path, polled.query, polled.json) == (
        "GET",
        "/xai/tasks",
        {"taskId": task_id},
        None,
    )
    assert sandbox.tasks[task_id].aspect_ratio == "3:2"


# ----- timing and config -----


async def test_real_clock_short_duration(make_sandbox: MakeSandbox, http: aiohttp.ClientSession) -> None:
    _, base_url = await make_sandbox(duration=0.2, clock=time.monotonic)
    task_id = await submit(http, base_url)
    assert (await poll(http, base_url, task_id))["status"] in ("pending", "processing")
    await asyncio.sleep(0.25)  # real time passing is what is tested: the task ends after its 0.2 s
    assert (await poll(http, base_url, task_id))["status"] == "completed"


async def test_duration_sampler_draws_per_task(
    make_sandbox: MakeSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox, base_url = await make_sandbox(duration_sampler=log_uniform(1.0, 30.0), seed=3)
    for _ in range(20):
        await submit(http, base_url)
    durations = [task.duration for task in sandbox.tasks.values()]
    assert all(1.0 <= duration <= 30.0 for duration in durations)
    assert len(set(durations)) == 20
    sample = log_uniform(2.0, 8.0)
    rng = random.Random(1)
    assert all(2.0 <= sample(rng) <= 8.0 for _ in range(1000))


@pytest.mark.parametrize(
    "overrides",
    [
        {"failure_rate": 1.5},
        {"rate_limit_rate": -0.1},
        {"result_shape": "xml"},
        {"images_per_task": 0},
        {"duration": -1.0},
    ],
)
def test_config_rejects_nonsense(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SandboxConfig(**overrides)
    with pytest.raises(ValueError):
        log_uniform(0.0, 1.0)


async def test_many_tasks_stay_cheap(make_sandbox: MakeSandbox, http: aiohttp.ClientSession) -> None:
    sandbox, base_url = await make_sandbox()
    task_ids = await asyncio.gather(*(submit(http, base_url) for _ in range(300)))
    bodies = await asyncio.gather(*(poll(http, base_url, task_id) for task_id in task_ids))
    assert len(set(task_ids)) == 300
    assert {body["status"] for body in bodies} == {"pending"}
    assert sandbox.task_count == 300
