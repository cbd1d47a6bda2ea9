"""Any answer of the image API that cannot be read is a MalformedAnswerError, on every entry point of
the client (submit, poll): nested deeper than any real answer (a 200 KB `[[[…]]]` once raised
RecursionError out of `submit`), over the size cap, not JSON, not UTF-8, or with fields of the wrong
type. Each is counted in the `imagine_api_malformed_answers` metric, and the runner turns it into a
told member (submit) or a retried poll, never a job stuck in `submitting`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import aiohttp
import pytest

from bot.adapters import image_api
from bot.adapters.image_api import (
    MAX_ANSWER_DEPTH,
    ImageApi,
    MalformedAnswerError,
    RefusedError,
    TransientError,
)
from bot.core.models import ImageRequest, JobStatus, Origin
from bot.core.runner import MSG_UNKNOWN
from bot.ops import metrics
from sandbox.server import Sandbox
from tests.helpers import RecordingSink, running_runner

Route = Literal["submit", "poll"]
ORIGIN = Origin(source="test", guild_id=1, channel_id=2, user_id=3)
CAP = 500_000  # the client's answer cap in these tests


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def with_field(route: Route, value: object) -> bytes:
    """A well-formed answer but for one field holding `value`."""
    if route == "submit":
        return json.dumps({"taskId": value}).encode()
    return json.dumps({"taskId": "t", "status": value}).encode()


# (name, body for the route): each must become MalformedAnswerError with a reason that says why.
def bad_answers(route: Route) -> list[tuple[str, bytes, str]]:
    shape = "no task id" if route == "submit" else "not an object"
    field = "no task id" if route == "submit" else "status"
    return [
        ("200 KB of nested arrays", nested(100_000), "nested deeper"),
        ("objects nested past the limit", nested_objects(MAX_ANSWER_DEPTH + 5), "nested deeper"),
        ("arrays nested just past the limit", b'{"x":' + nested(MAX_ANSWER_DEPTH) + b"}", "nested deeper"),
        ("over the size cap", b'{"pad": "' + b"x" * (CAP + 10) + b'"}', "larger than the bot accepts"),
        ("not JSON", b"<html>Bad gateway</html>", "not valid JSON"),
        ("cut off", b'{"taskId": "abc', "not valid JSON"),
        ("not UTF-8", b'{"taskId": "\xff\xfe\xfa"}', "not valid UTF-8"),
        ("a number of 5000 digits", b'{"taskId": ' + b"9" * 5000 + b"}", "not valid JSON"),
        ("an array", b"[]", shape),
        ("a string", b'"ok"', shape),
        ("null", b"null", shape),
        ("empty", b"", shape),
        ("a number where text belongs", with_field(route, 7), field),
        ("an array where text belongs", with_field(route, ["x"]), field),
        ("an object where text belongs", with_field(route, {"a": 1}), field),
    ]  # fmt: skip


@pytest.fixture
async def api(sandbox: Sandbox) -> AsyncIterator[ImageApi]:
    async with aiohttp.ClientSession() as session:
        yield ImageApi(
            session, sandbox.base_url or "", "sandbox-key", "grok-imagine-image", max_answer_bytes=CAP
        )


async def call(api: ImageApi, route: Route) -> object:
    if route == "submit":
        return await api.submit("a lighthouse", None)
    return await api.poll("some-task")


@pytest.mark.parametrize("route", ["submit", "poll"])
async def test_every_unreadable_answer_is_malformed_and_counted(
    sandbox: Sandbox, api: ImageApi, route: Route
) -> None:
    for name, body, why in bad_answers(route):
        sandbox.answer_next(route, body)
        before = image_api.MALFORMED_ANSWERS[route]
        with pytest.raises(MalformedAnswerError) as raised:
            await call(api, route)
        assert why in raised.value.reason, (name, raised.value.reason)
        assert image_api.MALFORMED_ANSWERS[route] == before + 1, name
    exported = metrics.render().decode()
    assert f'imagine_api_malformed_answers_total{{endpoint="{route}"}}' in exported


@pytest.mark.parametrize("route", ["submit", "poll"])
async def test_an_error_answer_with_an_unreadable_body_keeps_its_meaning(
    sandbox: Sandbox, api: ImageApi, route: Route
) -> None:
    sandbox.answer_next(route, nested(200_000), status=400)
    with pytest.raises(RefusedError):
        await call(api, route)
    sandbox.answer_next(route, b'{"message": ' + nested_objects(5000) + b"}", status=500)
    with pytest.raises(TransientError):
        await call(api, route)


async def test_mistyped_optional_poll_fields_are_dropped_not_fatal(sandbox: Sandbox, api: ImageApi) -> None:
    answer = {
        "taskId": ["not", "text"],
        "status": "completed",
        "result": {"images": ["https://cdn.example/1.png"]},
        "errorMessage": {"nested": "object"},
        "errorCode": "500",
        "traceId": {"a": 1},
        "createdAt": [1],
        "finishedAt": 12,
    }
    sandbox.answer_next("poll", json.dumps(answer).encode())
    status = await api.poll("asked-for")
    assert (status.task_id, status.status, status.error_message, status.error_code) == (
        "asked-for",
        "completed",
        None,
        None,
    )
    assert (status.trace_id, status.created_at, status.finished_at) == (None, None, "12")


async def test_a_nested_submit_answer_ends_the_job_and_tells_the_member(
    sandbox: Sandbox, db_path: Path
) -> None:
    sink = RecordingSink()
    sandbox.answer_next("submit", nested(200_000))
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        job = await runner.enqueue(ImageRequest("a nested answer"), ORIGIN)
        [outcome] = await sink.wait_for(1)
        row = await runner.store.get_job(job.id)
    assert outcome.text == MSG_UNKNOWN
    assert row is not None and row.status is JobStatus.UNKNOWN  # not left `submitting`


async def test_a_nested_poll_answer_is_retried_and_the_image_still_arrives(
    sandbox: Sandbox, db_path: Path
) -> None:
    sink = RecordingSink()
    sandbox.force_next("completed", duration=0.0)
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        before = image_api.MALFORMED_ANSWERS["poll"]
        sandbox.answer_next("poll", nested(200_000))
        await runner.enqueue(ImageRequest("a nested poll answer"), ORIGIN)
        [outcome] = await sink.wait_for(1)
    assert outcome.images and outcome.images[0].data
    assert image_api.MALFORMED_ANSWERS["poll"] == before + 1
