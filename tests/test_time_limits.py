"""Every test has a time limit that really fires: a wait that never ends fails the test, with an error
saying so, instead of hanging the run (pytest-timeout, set in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import wait_until

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


    def test_the_next_test_still_runs() -> None:
        assert True
    """
)


def test_the_suite_sets_a_time_limit_on_every_test(pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) == 60
    assert pytestconfig.getini("timeout_method") == "signal"


def test_a_wait_that_never_ends_fails_quickly_and_says_so(tmp_path: Path) -> None:
    """The suite's own settings (pyproject.toml), on two xdist workers, with the limit cut to 2 s."""
    (tmp_path / "test_hanging.py").write_text(HANGING)
    started = time.monotonic()
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path)),
            *("-p", "no:cacheprovider", "-o", "timeout=2", "-n", "2", "-rA", str(tmp_path)),
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
    assert out.count("Failed: Timeout (>2.0s) from pytest-timeout.") == 2, out
    assert took < 30, out


async def test_wait_until_names_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"waited 0.2 s for the moon to turn blue \(it is grey\)"):
        await wait_until(lambda: False, lambda: "the moon to turn blue (it is grey)", timeout=0.2)
    assert time.monotonic() - started < 2
    assert await wait_until(lambda: "found", "anything", timeout=0.2) == "found"
