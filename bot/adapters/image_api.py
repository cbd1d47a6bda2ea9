"""Client for the asynchronous image API: typed answers, typed errors, result extraction.

Every HTTP request to the image API lives here, for images (`submit`) and videos (`submit_video`).
Errors are values the runner can act on; their messages never contain the API key (the key only
ever travels in a request header). `submit`, `submit_video` and `poll` raise nothing but `ApiError`s:
an answer that cannot be read (too large, not JSON, nested deeper than any real answer, fields of the
wrong type) is a `MalformedAnswerError`, counted per endpoint in `MALFORMED_ANSWERS` (exported as a
metric by bot/ops/metrics.py).
"""

from __future__ import annotations

import collections
import json
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.core.video_contract import VIDEO_MODEL

log = logging.getLogger(__name__)

RUNNING_STATUSES = frozenset({"pending", "ready", "assigned", "processing"})
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "timeout"})
MAX_IMAGES_PER_RESULT = 10
# No documented answer is nested more than a few levels; a deeper one is refused before anything walks
# it (a 200 KB `[[[…]]]` would otherwise raise RecursionError in the JSON decoder or in `repr`).
MAX_ANSWER_DEPTH = 32
ENDPOINTS = ("submit", "poll")
MALFORMED_ANSWERS: collections.Counter[str] = collections.Counter()
"""Malformed answers since the process started, by endpoint (submit, poll)."""


class ApiError(Exception):
    """Base of every error the client raises; `reason` is safe to show a user."""

    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadKeyError(ApiError):
    """401/403: the key is wrong or the account unfunded; the operator must act."""


class RefusedError(ApiError):
    """400: the API refused the request; `reason` is its sanitized message."""


class RateLimitedError(ApiError):
    """429: come back after `retry_after` seconds (None when the API did not say)."""

    retryable = True

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class TransientError(ApiError):
    """5xx, timeout or connection trouble. `reached_server` is False only when the request
    certainly never arrived (connection refused, 503), which is what makes a submit safe to retry."""

    retryable = True

    def __init__(self, reason: str, *, reached_server: bool) -> None:
        super().__init__(reason)
        self.reached_server = reached_server


class TaskNotFoundError(ApiError):
    """404 on a poll: the API does not know the task (any more)."""


class MalformedAnswerError(ApiError):
    """The API answered 200 with something that is not the documented shape."""

    retryable = True


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    status: str
    result: Any
    error_message: str | None
    error_code: int | None
    trace_id: str | None
    created_at: str | None
    finished_at: str | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_running(self) -> bool:
        return not self.is_final


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2060-\u206f]")
_SPACES = re.compile(r"\s+")


def sanitize(text: object, secrets: Sequence[str] = (), limit: int = 300) -> str:
    """Make an API-provided string safe to show: one line, no control characters, bounded,
    no secret in it, and no `@` that could look like a mention."""
    value = "" if text is None else str(text)
    for secret in secrets:
        if secret:
            value = value.replace(secret, "[redacted]")
    value = _CONTROL.sub(" ", value)
    value = _SPACES.sub(" ", value).strip()
    value = value.replace("@", "@\u200b").replace("`", "'")
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return value


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    # A hostile or broken header must not park a job for a day.
    return None if math.isnan(seconds) else min(max(seconds, 0.0), 300.0)


class ImageApi:
    """One instance per process, sharing the process's single aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        model: str,
        *,
        timeout: float = 30.0,
        max_answer_bytes: int = 20 * 1024 * 1024,
    ) -> None:
        self._session = session
        self._max_answer = max_answer_bytes
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._model = model
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))

    @property
    def model(self) -> str:
        return self._model

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}

    async def submit(self, prompt: str, aspect_ratio: str | None, images: Sequence[str] = ()) -> str:
        """Start a task and return its id. See `TransientError.reached_server` before retrying."""
        body: dict[str, Any] = {"prompt": prompt, "model": self._model}
        if aspect_ratio:
            body["aspectRatio"] = aspect_ratio
        if images:
            body["images"] = list(images)
        data = await self._request("POST", "/xai/images", "submit", json_body=body, submitting=True)
        return _task_id_of(data)

    async def submit_video(
        self,
        prompt: str,
        *,
        duration: int,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        image: str | None = None,
    ) -> str:
        """Start a video task (`POST /xai/videos`, followed like an image task). With `image`, the clip
        animates it and takes its size, so the aspect ratio and resolution are not sent."""
        body: dict[str, Any] = {"prompt": prompt, "model": VIDEO_MODEL, "duration": duration}
        if image:
            body["images"] = [image]
        else:
            if aspect_ratio:
                body["aspectRatio"] = aspect_ratio
            if resolution:
                body["resolution"] = resolution
        data = await self._request("POST", "/xai/videos", "submit", json_body=body, submitting=True)
        return _task_id_of(data)

    async def poll(self, task_id: str) -> TaskStatus:
        data = await self._request("GET", "/xai/tasks", "poll", params={"taskId": task_id})
        if not isinstance(data, dict):
            raise _malformed("poll", "the image service sent a status that is not an object")
        status = data.get("status")
        if not isinstance(status, str) or status.lower() not in RUNNING_STATUSES | FINAL_STATUSES:
            raise _malformed("poll", f"the image service sent an unknown status {_shown(status)}")
        code = data.get("errorCode")
        message = _text(data.get("errorMessage"))
        # Optional fields of the wrong type are dropped rather than failing a task that may be done.
        answer = TaskStatus(
            task_id=_text(data.get("taskId")) or task_id,
            status=status.lower(),
            result=data.get("result"),
            error_message=sanitize(message, [self._key]) if message else None,
            error_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            trace_id=_text(data.get("traceId")),
            created_at=_text(data.get("createdAt")),
            finished_at=_text(data.get("finishedAt")),
        )
        log.debug("task %s is %s (trace %s)", task_id, answer.status, answer.trace_id)
        return answer

    async def _request(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        submitting: bool = False,
    ) -> Any:
        url = self._base + path
        try:
            async with self._session.request(
                method, url, json=json_body, params=params, headers=self._headers(), timeout=self._timeout
            ) as response:
                status = response.status
                # An answer is read only up to a cap: a huge (or endless) body must not fill memory.
                raw, complete = await _read_capped(
                    response, self._max_answer if status == 200 else _ERROR_BODY_BYTES
                )
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                trace = response.headers.get("X-Trace-Id") or response.headers.get("traceId")
        except aiohttp.ClientConnectorError:
            raise TransientError("the image service could not be reached", reached_server=False) from None
        except TimeoutError:
            raise TransientError("the image service did not answer in time", reached_server=True) from None
        except aiohttp.ClientError as exc:
            raise TransientError(
                f"the connection to the image service failed ({type(exc).__name__})", reached_server=True
            ) from None

        if status == 200 and not complete:
            log.warning(
                "image API %s %s answered with more than %s bytes%s; treating it as malformed "
                "(raise MAX_ANSWER_MB if the service really sends such answers)",
                method,
                path,
                self._max_answer,
                f" (trace {trace})" if trace else "",
            )
            raise _malformed(endpoint, "the image service sent an answer larger than the bot accepts")
        if status == 200:
            try:
                return _decode_json(raw)
            except _UnreadableAnswer as exc:
                log.warning(
                    "image API %s %s answered 200 with %s%s",
                    method,
                    path,
                    exc,
                    f" (trace {trace})" if trace else "",
                )
                raise _malformed(endpoint, f"the image service sent an answer that {exc}") from None
        try:
            payload = _decode_json(raw) if complete else None
        except _UnreadableAnswer:
            payload = None  # an error answer's body only lends its message; its raw start will do
        message = sanitize(_error_text(payload) or raw[:200].decode("utf-8", "replace"), [self._key])
        log.log(
            logging.ERROR if status in (401, 403) else logging.WARNING,
            "image API %s %s answered %s%s: %s",
            method,
            path,
            status,
            f" (trace {trace})" if trace else "",
            message or "no message",
        )
        if status in (401, 403):
            raise BadKeyError("the image service refused our API key")
        if status in {400, 422}:
            raise RefusedError(message or "the image service refused the request")
        if status == 404 and not submitting:
            raise TaskNotFoundError("the image service no longer knows this task")
        if status == 429:
            raise RateLimitedError("the image service is busy (rate limited)", retry_after)
        if status == 503:
            # The gateway sheds load before processing: the request did not start a task.
            raise TransientError("the image service is temporarily unavailable", reached_server=False)
        if status >= 500:
            raise TransientError(f"the image service had an error (HTTP {status})", reached_server=True)
        raise _malformed(endpoint, f"the image service answered HTTP {status}")


_ERROR_BODY_BYTES = 64 * 1024  # of an error answer, only its message is used


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> tuple[bytes, bool]:
    """The body if it is at most `cap` bytes, and True; else only its start (for a log line), and False."""
    declared = response.content_length
    if declared is not None and declared > cap:
        return await response.content.read(min(cap, _ERROR_BODY_BYTES)), False
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > cap:
            return bytes(body[: min(cap, _ERROR_BODY_BYTES)]), False
    return bytes(body), True


_MAX_ID_CHARS = 200  # a task id is a short token; anything longer is not one


class _UnreadableAnswer(Exception):
    """Why a body is not a usable JSON answer, worded to follow "the image service sent an answer that"."""


def _malformed(endpoint: str, reason: str) -> MalformedAnswerError:
    MALFORMED_ANSWERS[endpoint] += 1
    return MalformedAnswerError(reason)


def _decode_json(raw: bytes) -> Any:
    """The parsed body (None when empty), or `_UnreadableAnswer`: invalid JSON or text, numbers Python
    refuses (an integer of thousands of digits), or nesting deeper than MAX_ANSWER_DEPTH."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _UnreadableAnswer(f"is nested deeper than {MAX_ANSWER_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise _UnreadableAnswer("is not valid UTF-8 text") from None
    except ValueError:  # JSONDecodeError, and int() refusing a number of thousands of digits
        raise _UnreadableAnswer("is not valid JSON") from None
    if _deeper_than(value, MAX_ANSWER_DEPTH):
        raise _UnreadableAnswer(f"is nested deeper than {MAX_ANSWER_DEPTH} levels")
    return value


def _task_id_of(data: Any) -> str:
    task_id = data.get("taskId") if isinstance(data, dict) else None
    if not isinstance(task_id, str) or not task_id.strip() or len(task_id) > _MAX_ID_CHARS:
        # The API took the request but gave no usable id: it may be running and billed.
        raise _malformed("submit", "the image service accepted the request but returned no task id")
    log.info("submitted task %s", task_id)
    return task_id


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than `limit` levels; iterative, so no depth can overflow it."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _text(value: Any) -> str | None:
    """An optional text field: a string or number as text; anything else (lists, objects) as absent."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value) or None
    return None


def _shown(value: Any) -> str:
    """A field's value for a log line or a reason: short, and a list or object only named."""
    if isinstance(value, dict | list):
        return f"(a JSON {'object' if isinstance(value, dict) else 'array'})"
    return repr(sanitize(value, limit=40))


def _error_text(payload: Any) -> str | None:
    if isinstance(payload, dict):
        for key in ("message", "errorMessage", "error", "detail", "msg"):
            value = payload.get(key)
            if isinstance(value, str) and value.strip():
                return value
            if isinstance(value, dict):
                nested = _error_text(value)
                if nested:
                    return nested
    return None


@dataclass(frozen=True)
class ResultImage:
    """One image found in a task result: a URL to download, or inline base64 data."""

    url: str | None = None
    b64: str | None = None

    @property
    def ref(self) -> str:
        """What the job row stores: the URL, or a data URI for inline images."""
        if self.url is not None:
            return self.url
        return f"data:image/png;base64,{self.b64}"


_B64_KEYS = ("b64_json", "b64", "base64", "image_base64")
_MAX_DEPTH = 5


def extract_images(result: Any) -> list[ResultImage]:
    """Find every image in an undocumented `result`, in order, without duplicates.

    Handles lists of URL strings under any key, objects with `url`, OpenAI-style `data[]`, base64
    `b64_json`, data URIs, and nesting a few levels deep.
    """
    found: list[ResultImage] = []
    seen: set[str] = set()
    for image in _walk(result, 0):
        key = image.ref
        if key not in seen:
            seen.add(key)
            found.append(image)
        if len(found) >= MAX_IMAGES_PER_RESULT:
            break
    return found


def _walk(node: Any, depth: int) -> Iterator[ResultImage]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, str):
        image = _from_string(node)
        if image is not None:
            yield image
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, depth + 1)
    elif isinstance(node, dict):
        for key in _B64_KEYS:
            value = node.get(key)
            if isinstance(value, str) and len(value) > 32:
                yield ResultImage(b64=value.split(",", 1)[1] if value.startswith("data:") else value)
        for value in node.values():
            yield from _walk(value, depth + 1)


def _from_string(value: str) -> ResultImage | None:
    text = value.strip()
    if text.startswith(("https://", "http://")) and " " not in text:
        return ResultImage(url=text)
    if text.startswith("data:image/") and ";base64," in text:
        return ResultImage(b64=text.split(",", 1)[1])
    return None


_VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".m4v")


def extract_videos(result: Any) -> list[str]:
    """Every video link in a finished video task's undocumented `result`, the likeliest first: links
    ending like a video file or found under a key that names a video, then any other web link. The
    bytes decide in the end (an MP4 is checked when it is fetched); an empty list means no video."""
    likely: list[str] = []
    other: list[str] = []
    stack: list[tuple[Any, str, int]] = [(result, "", 0)]
    while stack:
        node, key, depth = stack.pop(0)
        if depth > _MAX_DEPTH:
            continue
        if isinstance(node, str):
            if node.startswith(("https://", "http://")) and node not in likely and node not in other:
                path = node.split("?", 1)[0].lower()
                (likely if path.endswith(_VIDEO_SUFFIXES) or "video" in key.lower() else other).append(node)
        elif isinstance(node, dict):
            stack.extend((value, str(name), depth + 1) for name, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, key, depth + 1) for value in node)
    return (likely + other)[:MAX_IMAGES_PER_RESULT]
