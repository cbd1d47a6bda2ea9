"""Prometheus metrics (the official client), on a registry of the bot's own.

Most values are observed through seams rather than calls sprinkled in the core: image API requests
through an aiohttp TraceConfig on the one session, jobs by state and refusals from the database at
scrape time, gateway latency from discord.py, event-loop lag from a small timer task. The only
measurement taken inside a flow is "task finished → image delivered", in the Discord sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from yarl import URL

from bot.adapters import image_api

# No `*_created` series next to every counter and histogram: nothing here needs them.
disable_created_metrics()  # type: ignore[no-untyped-call]
registry = CollectorRegistry(auto_describe=True)

jobs_by_state = Gauge(
    "imagine_jobs",
    "Jobs of this bot not yet finished, by state, from the shared database: exported by the process"
    " running shard 0 only",
    ["state"],
    registry=registry,
)
jobs_in_flight = Gauge(
    "imagine_jobs_in_flight",
    "Submits, polls and deliveries this process is running right now",
    registry=registry,
)
submits = Counter(
    "imagine_submits",
    "Image API submits by outcome (ok, http_<status>, timeout, error)",
    ["outcome"],
    registry=registry,
)
polls = Counter(
    "imagine_polls",
    "Image API status polls by outcome (ok, http_<status>, timeout, error)",
    ["outcome"],
    registry=registry,
)
api_latency = Histogram(
    "imagine_api_request_seconds",
    "Image API request latency by endpoint (submit, poll, download)",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=registry,
)
delivery_delay = Histogram(
    "imagine_delivery_delay_seconds",
    "From the task's completion being seen to the image posted in Discord",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160),
    registry=registry,
)
refusals = Counter(
    "imagine_refusals",
    "Requests refused, by reason, read from the shared usage log at scrape time: exported by the process"
    " running shard 0 only, so a sum over processes counts each refusal once",
    ["reason"],
    registry=registry,
)
JOB_OUTCOMES = ("completed", "failed", "timed_out", "undeliverable", "cancelled")
jobs_finished = Counter(
    "imagine_jobs_finished",
    "Jobs this process finished, by outcome (completed, failed, timed_out, undeliverable, cancelled)",
    ["outcome"],
    registry=registry,
)
for _outcome_name in JOB_OUTCOMES:  # every outcome from the start: a rate over a missing series is no rate
    jobs_finished.labels(_outcome_name)
gateway_latency = Gauge(
    "imagine_discord_gateway_latency_seconds",
    "Discord gateway heartbeat latency",
    ["shard"],
    registry=registry,
)
loop_lag = Histogram(
    "imagine_event_loop_lag_seconds",
    "How late a timer on the event loop fires",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=registry,
)
loop_lag_last = Gauge(
    "imagine_event_loop_lag_last_seconds", "The latest event-loop lag sample", registry=registry
)


class _MalformedAnswers(Collector):
    """The image API client's own count of answers it could not read, read at scrape time."""

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "imagine_api_malformed_answers",
            "Image API answers the bot could not read (too large, not JSON, too deeply nested, wrong "
            "field types), by endpoint",
            labels=["endpoint"],
        )
        for endpoint in image_api.ENDPOINTS:
            family.add_metric([endpoint], image_api.MALFORMED_ANSWERS[endpoint])
        yield family


registry.register(_MalformedAnswers())


def render() -> bytes:
    return generate_latest(registry)


def set_jobs_by_state(counts: dict[str, int], states: Iterable[str]) -> None:
    for state in states:  # every known state, so a state that empties drops to 0 instead of vanishing
        jobs_by_state.labels(state).set(counts.get(state, 0))


def add_refusals(counts: dict[str, int]) -> None:
    for reason, count in counts.items():
        refusals.labels(reason).inc(count)


def add_finished(counts: Mapping[str, int], counted: dict[str, int]) -> None:
    """Bring `imagine_jobs_finished` up to the runner's own tally `counts`; `counted` is what was
    already added (kept by the caller: one per runner). A status outside JOB_OUTCOMES counts as failed."""
    for outcome, total in counts.items():
        new = total - counted.get(outcome, 0)
        if new > 0:
            jobs_finished.labels(outcome if outcome in JOB_OUTCOMES else "failed").inc(new)
            counted[outcome] = total


def set_gateway_latencies(latencies: Iterable[tuple[int, float]]) -> None:
    for shard, latency in latencies:
        if math.isfinite(latency):  # discord.py says inf/nan until the first heartbeat answer
            gateway_latency.labels(str(shard)).set(latency)


# -- image API requests, seen through the session --------------------------------------------------------


def _outcome(status: int | None, error: BaseException | None = None) -> str:
    if error is not None:
        return "timeout" if isinstance(error, asyncio.TimeoutError | TimeoutError) else "error"
    assert status is not None
    return "ok" if 200 <= status < 300 else f"http_{status}"


def api_trace_config(base_url: str) -> aiohttp.TraceConfig:
    """A TraceConfig for the bot's session: times every request; classifies those to the image API."""
    base = URL(base_url)

    def endpoint(method: str, url: URL) -> str:
        if url.host == base.host and url.port == base.port and url.path.startswith(base.path.rstrip("/")):
            if method == "POST" and url.path.endswith("/xai/images"):
                return "submit"
            if method == "GET" and url.path.endswith("/xai/tasks"):
                return "poll"
        return "download"

    async def on_start(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        ctx.started = time.perf_counter()

    def finish(ctx: SimpleNamespace, method: str, url: URL, status: int | None, error: Any) -> None:
        kind = endpoint(method, url)
        api_latency.labels(kind).observe(time.perf_counter() - getattr(ctx, "started", time.perf_counter()))
        if kind == "submit":
            submits.labels(_outcome(status, error)).inc()
        elif kind == "poll":
            polls.labels(_outcome(status, error)).inc()

    async def on_end(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        finish(ctx, params.method, params.url, params.response.status, None)

    async def on_error(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams
    ) -> None:
        finish(ctx, params.method, params.url, None, params.exception)

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_error)
    return config


# -- event-loop lag --------------------------------------------------------------------------------------


async def watch_loop_lag(interval: float = 0.5) -> None:
    """Sleep `interval` again and again; whatever it oversleeps is time the loop was busy elsewhere."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        lag = max(0.0, loop.time() - started - interval)
        loop_lag.observe(lag)
        loop_lag_last.set(lag)


def start_loop_lag_watch(interval: float = 0.5) -> asyncio.Task[None]:
    return asyncio.create_task(watch_loop_lag(interval), name="event-loop-lag")


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
