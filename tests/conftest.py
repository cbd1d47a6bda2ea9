"""Fixtures shared by every test: a real sandbox API server and a temporary database path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox import Sandbox, SandboxConfig
from tests.bot_harness import World
from tests.fake_discord import running_fake


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
