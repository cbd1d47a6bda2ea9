"""Waits in the tests end. Every test has a time limit that really fires (pytest-timeout, set in
pyproject.toml): a wait that never ends fails the test with an error saying so instead of hanging the
run. wait_until names what it waited for. The definite "nothing more will happen" waits that replace
fixed sleeps do wait for the work under way."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest

from bot.core.models import ImageRequest, JobStatus, Origin
from sandbox.server import Sandbox
from testing.fake_discord import running_fake
from tests.helpers import RecordingSink, runner_settled, running_runner, wait_until

ROOT = Path(__file__).resolve().parents[1]

HANGING = textwrap.dedent(
    """
    import asyncio
    import threading


    async def test_an_event_nobody_sets() -> None:
        await asyncio.Event().wait()


    def test_a_lock_nobody_releases() -> None:
        lock = threading.Lock()
        lock.acquire()
        lock.acquire()


    async def test_the_next_test_still_runs() -> None:
        await asyncio.sleep(0)
    """
)


def test_the_suite_sets_a_time_limit_on_every_test(pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) == 60
    assert pytestconfig.getini("timeout_method") == "signal"


TIMED_OUT = "Failed: Timeout (>2.0s) from pytest-timeout."


def test_a_wait_that_never_ends_fails_quickly_and_says_so(tmp_path: Path) -> None:
    """The suite's own settings (pyproject.toml) under xdist, with the limit cut to 2 s. The file's tests
    run in order on one worker (--dist loadfile): after two time-outs its next async test still runs."""
    (tmp_path / "test_hanging.py").write_text(HANGING)
    started = time.monotonic()
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path)),
            *("-p", "no:cacheprovider", "-o", "timeout=2", "-n", "2", "--dist", "loadfile"),
            *("-rA", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,  # this test's own deadline, well inside its limit
        check=False,
    )
    took = time.monotonic() - started
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "2 failed, 1 passed" in out, out
    # One traceback line per timed-out test (pytest repeats the reason in its summary, and when CI is set
    # it does not shorten those lines, so the reason's own count depends on the environment).
    raised = [line for line in out.splitlines() if line.lstrip().startswith("E") and TIMED_OUT in line]
    assert len(raised) == 2, out
    assert took < 30, out


async def test_wait_until_names_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"waited 0.2 s for the moon to turn blue \(it is grey\)"):
        await wait_until(lambda: False, lambda: "the moon to turn blue (it is grey)", timeout=0.2)
    assert time.monotonic() - started < 2
    assert await wait_until(lambda: "found", "anything", timeout=0.2) == "found"


async def test_a_settled_runner_has_finished_what_was_under_way(sandbox: Sandbox, db_path: Path) -> None:
    sandbox.config.duration = 0.5
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        job = await runner.enqueue(ImageRequest("under way"), Origin(source="test"))
        await runner_settled(runner)  # at once: it may return only when nothing more will happen
        row = await runner.store.jobs.get(job.id)
    assert len(sink.outcomes) == 1 and sink.outcomes[0].images is not None
    assert row is not None and row.status is JobStatus.DELIVERED and row.delivered_at is not None


async def test_the_fake_discord_is_idle_only_once_every_request_is_answered() -> None:
    async with running_fake() as fake, aiohttp.ClientSession() as http:
        fake.slow_route("GET", "/users/@me", 0.3)
        headers = {"Authorization": f"Bot {fake.token}"}
        call = asyncio.create_task(http.get(f"{fake.api_base}/users/@me", headers=headers))
        await wait_until(lambda: fake.requests, "the request to reach the fake Discord")
        assert fake.in_flight == 1  # still being handled
        await fake.wait_idle()
        [request] = fake.requests
        assert request.status == 200 and fake.in_flight == 0
        assert await fake.wait_for_requests(lambda r: r.path == "/users/@me", 1) == [request]
        (await call).release()
