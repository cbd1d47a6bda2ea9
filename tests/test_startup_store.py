"""The bot opens its store once per start (so migrations and SQLite's quick_check run once) and hands
it on, and releases its leases on jobs once as it stops: a real `python -m bot` process, counted by
tests/startup_count_child.py, against the fake Discord and the sandbox."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp

from sandbox.server import Sandbox, SandboxConfig
from testing.fake_discord import running_fake
from tests.test_operations import API_KEY, TOKEN, bot_env, free_port, get


async def counted_run(tmp_path: Path, **settings: str) -> dict[str, int]:
    """Start the bot, let one job reach the running state (so it holds a lease), stop it with SIGTERM."""
    sandbox = Sandbox(SandboxConfig(duration=60.0, seed=5, api_key=API_KEY))
    await sandbox.start()
    counts_file = tmp_path / "counts.json"
    port = free_port()
    try:
        async with running_fake(token=TOKEN) as fake:
            env = bot_env(
                DISCORD_TOKEN=TOKEN,
                DISCORD_API_BASE=fake.api_base,
                MOUNTSEA_API_KEY=API_KEY,
                MOUNTSEA_BASE_URL=sandbox.base_url or "",
                DATABASE_PATH=str(tmp_path / "bot.db"),
                DEV_GUILD_ID=str(fake.guild_id),
                METRICS_PORT=str(port),
                POLL_FIRST_DELAY="0.1",
                POLL_MIN_INTERVAL="0.05",
                COUNTS_FILE=str(counts_file),
                **settings,
            )
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.startup_count_child", env=env, cwd=tmp_path
            )
            try:
                async with asyncio.timeout(30):
                    while (await get_or_none(f"http://127.0.0.1:{port}/healthz")) != 200:
                        assert process.returncode is None, "the bot ended before it was healthy"
                        await asyncio.sleep(0.1)
                interaction = await fake.invoke_slash("imagine", {"prompt": "a lighthouse"})
                await fake.wait_for_callback(interaction, timeout=10)
                async with asyncio.timeout(10):  # polled at least once: the job is leased to this process
                    while (
                        'imagine_polls_total{outcome="ok"}'
                        not in (await get(f"http://127.0.0.1:{port}/metrics"))[1]
                    ):
                        await asyncio.sleep(0.1)
                process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), 20) == 0
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    finally:
        await sandbox.stop()
    counts: dict[str, int] = json.loads(counts_file.read_text())
    return counts


async def get_or_none(url: str) -> int | None:
    try:
        return (await get(url))[0]
    except (OSError, aiohttp.ClientError):
        return None


async def test_sqlite_store_is_opened_once_and_leases_released_once(tmp_path: Path) -> None:
    counts = await counted_run(tmp_path)
    assert counts.get("store_opens") == 1, counts  # preflight's store is the bot's: one migration run
    assert counts.get("lease_releases_at_stop") == 1, counts
    assert counts.get("closes_finished") == 1, counts  # the stop ran to its end, the store closed


async def test_postgresql_store_is_opened_once_and_leases_released_once(tmp_path: Path, pg_url: str) -> None:
    counts = await counted_run(tmp_path, DATABASE_URL=pg_url)
    assert counts.get("store_opens") == 1, counts
    assert counts.get("lease_releases_at_stop") == 1, counts
    assert counts.get("closes_finished") == 1, counts  # the stop ran to its end, the store closed
