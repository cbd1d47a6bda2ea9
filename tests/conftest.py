"""Fixtures shared by every test: a real sandbox API server and a temporary database path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.store import Store
from sandbox.server import Sandbox, SandboxConfig
from testing.fake_discord import running_fake
from tests.bot_harness import World
from tests.helpers import fresh_pg_schema


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    server = Sandbox(SandboxConfig(duration=0.3, seed=7))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def world(sandbox: Sandbox, db_path: Path) -> AsyncIterator[World]:
    async with running_fake() as fake:
        yield World(fake, sandbox, db_path)


# -- PostgreSQL: one throwaway server per test session, one schema per test -------------------------


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 16 (the `pgserver` package) on a Unix socket. If it cannot start, the tests
    that need it fail: CI must never pass by skipping the PostgreSQL half of the contract."""
    import shutil
    import tempfile

    import pgserver

    # Not under pytest's own temporary directory: that one is private to root (pgserver runs the
    # server as an unprivileged user when started by root) and pruned by concurrent pytest runs.
    parent = Path(tempfile.mkdtemp(prefix="imagine-pg-"))
    parent.chmod(0o755)
    server = pgserver.get_server(parent / "data", cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL whose connections see a fresh, empty schema of their own."""
    yield from fresh_pg_schema(pg_server)


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The same store contract on each backend."""
    if request.param == "sqlite":
        store = await Store.open(tmp_path / "bot.db")
    else:
        url = request.getfixturevalue("pg_url")
        store = await Store.open_url(url)
    try:
        yield store
    finally:
        await store.close()


# -- the web gallery: one world and one real browser per test session (per xdist worker) --------------


@pytest.fixture(scope="session")
def web_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.web_harness import WebWorld

    world = WebWorld(tmp_path_factory.mktemp("web"))
    try:
        yield world
    finally:
        world.close()


@pytest.fixture(scope="session")
def browser(web_world: Any) -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright's async API on the web world's loop (its
    thread): the sync API would leave a running loop in this thread and break the asyncio tests."""
    playwright, chromium = web_world.run(web_world.start_browser())
    try:
        yield chromium
    finally:
        web_world.run(web_world.stop_browser(playwright, chromium))
