"""The operators' HTTP endpoint: `/healthz` and `/metrics`, on 127.0.0.1 unless told otherwise.

It knows nothing of Discord: the bot hands it a coroutine that lists what is wrong and one that
refreshes the scrape-time metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.ops import metrics

log = logging.getLogger(__name__)

# Every answer comes within this, whatever the database does: below Prometheus's default scrape
# timeout (10 s) and Docker's health-check timeout, so a stuck database shows up as a named problem
# (or as stale database figures) instead of every metric vanishing.
ANSWER_DEADLINE = 5.0

Problems = Callable[[], Awaitable[dict[str, str]]]
Refresh = Callable[[], Awaitable[None]]


class OpsServer:
    def __init__(self, host: str, port: int, problems: Problems, refresh: Refresh) -> None:
        self.host, self.port = host, port
        self._problems, self._refresh = problems, refresh
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as error:
            await runner.cleanup()
            raise OSError(
                error.errno, f"metrics endpoint: cannot listen on {self.host}:{self.port} ({error.strerror})"
            ) from None
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("health and metrics on http://%s:%s/healthz and /metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(ANSWER_DEADLINE):
                problems = await self._problems()
        except TimeoutError:
            problems = {"health": f"the checks did not finish within {ANSWER_DEADLINE:g} s"}
        body = {"status": "ok"} if not problems else {"status": "unhealthy", "problems": problems}
        return web.json_response(body, status=503 if problems else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(ANSWER_DEADLINE):
                await self._refresh()
        except TimeoutError:  # a stuck database must not take the other metrics down with it
            log.warning(
                "metrics: the database figures did not come within %g s; serving the others", ANSWER_DEADLINE
            )
        except Exception:
            log.warning("metrics: could not refresh the database figures", exc_info=True)
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


def probe(host: str, port: int, timeout: float = 5.0) -> tuple[bool, str]:
    """`python -m bot healthcheck`: (healthy, one line). Standard library only: no curl in slim images."""
    target = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    url = f"http://{target}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return True, answer.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace").strip()
        try:
            problems = json.loads(body).get("problems", {})
            text = "; ".join(f"{part}: {why}" for part, why in problems.items()) or body
        except (ValueError, AttributeError):
            text = body
        return False, f"unhealthy ({error.code}): {text}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return False, f"no answer from {url} ({reason}); is the bot running with METRICS_PORT={port}?"
