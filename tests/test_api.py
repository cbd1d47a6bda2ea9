"""The API client: result extraction, error mapping over real HTTP, and secrets kept out of errors."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest

from bot.adapters.image_api import (
    BadKeyError,
    ImageApi,
    RateLimitedError,
    RefusedError,
    ResultImage,
    TaskNotFoundError,
    TransientError,
    extract_images,
    parse_retry_after,
    sanitize,
)
from sandbox.server import Sandbox

URL = "https://cdn.example/img/1.png?sig=abc"
URL2 = "https://cdn.example/img/2.png"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"images": [URL]}, [ResultImage(url=URL)]),
        ({"urls": [URL, URL2]}, [ResultImage(url=URL), ResultImage(url=URL2)]),
        ({"images": [{"url": URL}]}, [ResultImage(url=URL)]),
        ({"data": [{"url": URL}, {"url": URL2}]}, [ResultImage(url=URL), ResultImage(url=URL2)]),
        ({"data": [{"b64_json": "iVBORw0KGgo" + "A" * 40}]}, [ResultImage(b64="iVBORw0KGgo" + "A" * 40)]),
        ({"output": {"result": {"image_urls": [URL]}}}, [ResultImage(url=URL)]),
        ({"output": {"images": [{"image": {"url": URL}}]}}, [ResultImage(url=URL)]),
        ([URL], [ResultImage(url=URL)]),
        (URL, [ResultImage(url=URL)]),
        ({"images": [URL, URL]}, [ResultImage(url=URL)]),
        ({"image": "data:image/png;base64," + "B" * 40}, [ResultImage(b64="B" * 40)]),
    ],
)
def test_extracts_images_from_every_known_shape(result: Any, expected: list[ResultImage]) -> None:
    assert extract_images(result) == expected


@pytest.mark.parametrize(
    "result", [None, {}, [], {"images": []}, {"text": "no image"}, {"url": "not a url"}, 42]
)
def test_results_without_images_give_nothing(result: Any) -> None:
    assert extract_images(result) == []


def test_extraction_is_bounded_on_deep_or_huge_results() -> None:
    deep: Any = URL
    for _ in range(50):
        deep = {"next": deep}
    assert extract_images(deep) == []
    assert len(extract_images({"images": [f"https://x.example/{i}.png" for i in range(1000)]})) == 10


def test_sanitize_removes_secrets_controls_and_mentions() -> None:
    text = sanitize("bad key sk-123456789 \x1b[31m@everyone\n" + "x" * 500, ["sk-123456789"])
    assert "sk-123456789" not in text
    assert "\x1b" not in text and "\n" not in text
    assert "@everyone" not in text
    assert len(text) <= 300


@pytest.mark.parametrize(
    ("header", "value"), [("5", 5.0), ("0.5", 0.5), ("nan", None), ("soon", None), ("99999", 300.0)]
)
def test_retry_after_is_parsed_and_bounded(header: str, value: float | None) -> None:
    assert parse_retry_after(header) == value


async def test_http_errors_become_typed_errors(sandbox: Sandbox) -> None:
    secret = "sk-do-not-leak-0001"
    async with aiohttp.ClientSession() as session:
        bad = ImageApi(session, sandbox.base_url or "", secret, "grok-imagine-image")
        with pytest.raises(BadKeyError) as bad_key:
            await bad.submit("x", None)
        assert secret not in str(bad_key.value) and secret not in repr(bad_key.value.args)

        api = ImageApi(session, sandbox.base_url or "", "sandbox-key", "grok-imagine-image")
        with pytest.raises(RefusedError) as refused:
            await api.submit("x", "4:3")
        assert "aspectRatio" in refused.value.reason

        sandbox.rate_limit_next(1, retry_after=7)
        with pytest.raises(RateLimitedError) as limited:
            await api.submit("x", None)
        assert limited.value.retry_after == 7.0

        sandbox.fail_next_polls(1, status=503)
        task_id = await api.submit("x", None)
        with pytest.raises(TransientError):
            await api.poll(task_id)
        status = await api.poll(task_id)
        assert status.task_id == task_id and status.trace_id

        with pytest.raises(TaskNotFoundError):
            await api.poll("no-such-task")


async def test_connection_refused_certainly_did_not_reach_the_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        api = ImageApi(session, f"http://127.0.0.1:{port}", "k", "grok-imagine-image", timeout=2)
        with pytest.raises(TransientError) as error:
            await api.submit("x", None)
    assert error.value.reached_server is False


async def test_reference_images_are_sent_exactly(sandbox: Sandbox) -> None:
    refs = ["https://cdn.discordapp.com/attachments/1/2/a.png?ex=65&is=64&hm=abc123&", URL2]
    sandbox.config.check_references = False  # the links are only carried, never fetched
    async with aiohttp.ClientSession() as session:
        api = ImageApi(session, sandbox.base_url or "", "sandbox-key", "grok-imagine-image")
        await api.submit("edit this", "1:1", refs)
    body = sandbox.requests[-1].json
    assert body == {
        "prompt": "edit this",
        "model": "grok-imagine-image",
        "aspectRatio": "1:1",
        "images": refs,
    }
