"""The bot as operators run it: a real process against the fake Discord and the sandbox.

Stopping on SIGTERM/SIGINT, /healthz and /metrics, JSON logs free of secrets, and the one-line messages
when Discord, the token or the database is not usable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from sandbox.server import Sandbox, SandboxConfig
from testing.fake_discord import FakeDiscord, running_fake
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789ab"
API_KEY = "sk-operator-test-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(**values: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MOUNTSEA_", "DISCORD_"))}
    return {**clean, "PYTHONPATH": str(ROOT), **values}


@dataclass
class BotProcess:
    process: asyncio.subprocess.Process
    metrics_url: str
    stderr: bytearray

    async def wait(self, timeout: float) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout)


@contextlib.asynccontextmanager
async def bot_process(
    fake: FakeDiscord, sandbox: Sandbox, db: Path, *, module: str = "bot", **extra: str
) -> AsyncIterator[BotProcess]:
    """`python -m bot` (or `module`, a test's own wrapper of it) with these settings (`extra`)."""
    port = free_port()
    defaults = {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "MOUNTSEA_API_KEY": API_KEY,
        "MOUNTSEA_BASE_URL": sandbox.base_url or "",
        "DATABASE_PATH": str(db),
        "DEV_GUILD_ID": str(fake.guild_id),
        "METRICS_PORT": str(port),
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
        "POLL_FIRST_DELAY": "0.1",
        "POLL_MIN_INTERVAL": "0.05",
    }
    env = bot_env(**{**defaults, **extra})  # a test may override a default (e.g. LOG_LEVEL)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, env=env, cwd=db.parent, stderr=asyncio.subprocess.PIPE
    )
    stderr = bytearray()

    async def drain() -> None:
        assert process.stderr is not None
        while chunk := await process.stderr.read(65536):
            stderr.extend(chunk)

    reader = asyncio.create_task(drain())
    try:
        yield BotProcess(process, f"http://127.0.0.1:{port}", stderr)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status, await answer.text()


async def wait_healthy(bot: BotProcess, timeout: float = 30.0) -> None:
    async def healthy() -> bool:
        assert bot.process.returncode is None, bot.stderr.decode()
        with contextlib.suppress(aiohttp.ClientError):
            return (await get(bot.metrics_url + "/healthz"))[0] == 200
        return False

    await wait_until(healthy, "the bot process to answer /healthz with 200", timeout, interval=0.1)


@pytest.fixture
async def slow_sandbox() -> AsyncIterator[Sandbox]:
    server = Sandbox(SandboxConfig(duration=60.0, seed=3, api_key=API_KEY))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_sigterm_stops_cleanly_and_keeps_running_jobs(slow_sandbox: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    async with running_fake(token=TOKEN) as fake, bot_process(fake, slow_sandbox, db) as bot:
        await wait_healthy(bot)
        _, body = await get(bot.metrics_url + "/healthz")
        assert json.loads(body) == {"status": "ok"}

        interaction = await fake.invoke_slash("imagine", {"prompt": "a lighthouse at dusk"})
        await fake.wait_for_callback(interaction, timeout=10)
        await wait_until(lambda: slow_sandbox.tasks, "the submit to reach the sandbox", timeout=10)

        async def polled() -> str | None:  # the submit's answer is recorded, then a poll has gone out
            text = (await get(bot.metrics_url + "/metrics"))[1]
            return text if 'imagine_polls_total{outcome="ok"}' in text else None

        text = await wait_until(polled, "/metrics to count a poll", timeout=10, interval=0.1)
        assert 'imagine_submits_total{outcome="ok"} 1.0' in text
        assert 'imagine_jobs{state="running"} 1.0' in text
        assert 'imagine_api_request_seconds_bucket{endpoint="submit"' in text
        assert "imagine_event_loop_lag_seconds_count" in text
        assert 'imagine_discord_gateway_latency_seconds{shard="0"}' in text

        started = time.monotonic()
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.wait(10) == 0
        assert time.monotonic() - started < 10
        assert fake.connected_clients() == 0

    with sqlite3.connect(db) as conn:
        status_, next_poll_at = conn.execute("SELECT status, next_poll_at FROM jobs").fetchone()
    assert status_ == "running"  # resumed by the next start, not abandoned
    assert next_poll_at <= time.time()  # its lease was released: polled at once by whoever starts next

    lines = bot.stderr.decode().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    task_id = next(iter(slow_sandbox.tasks))
    assert any(r.get("job_id") == "1" and r.get("guild_id") == str(fake.guild_id) for r in records)
    assert any(r.get("task_id") == task_id and r.get("trace_id") for r in records)
    assert any("SIGTERM" in r["message"] for r in records)
    assert any(r["level"] == "DEBUG" for r in records)
    text = "\n".join(lines)
    for secret in (TOKEN, API_KEY, interaction.token):
        assert secret not in text


async def test_sigint_stops_with_exit_0(sandbox: Sandbox, tmp_path: Path) -> None:
    async with running_fake(token=TOKEN) as fake, bot_process(fake, sandbox, tmp_path / "bot.db") as bot:
        await wait_healthy(bot)
        bot.process.send_signal(signal.SIGINT)
        assert await bot.wait(10) == 0
        assert fake.connected_clients() == 0


async def run_once(env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=cwd, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, stderr.decode().strip().splitlines()


async def test_unreachable_discord_is_one_line_naming_discord(tmp_path: Path) -> None:
    code, lines = await run_once(
        bot_env(
            DISCORD_TOKEN=TOKEN,
            MOUNTSEA_API_KEY=API_KEY,
            DATABASE_PATH=str(tmp_path / "bot.db"),
            DISCORD_API_BASE=f"http://127.0.0.1:{free_port()}/api/v10",
        ),
        tmp_path,
    )
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith("Discord: cannot reach http://127.0.0.1:")
    assert "refused" in lines[0].lower()


async def test_refused_token_is_one_line_exit_2(tmp_path: Path) -> None:
    async with running_fake(token=TOKEN) as fake:
        other = TOKEN[:-4] + "zzzz"
        code, lines = await run_once(
            bot_env(
                DISCORD_TOKEN=other,
                MOUNTSEA_API_KEY=API_KEY,
                DATABASE_PATH=str(tmp_path / "bot.db"),
                DISCORD_API_BASE=fake.api_base,
            ),
            tmp_path,
        )
    assert code == 2
    said = [line for line in lines if not re.match(r"\d{4}-\d\d-\d\d \d\d:", line)]  # not a log line
    assert len(said) == 1, lines
    assert "DISCORD_TOKEN" in said[0] and "refused" in said[0]
    assert "Traceback" not in "\n".join(lines)
    assert other not in "\n".join(lines)


async def test_unusable_database_is_named_before_discord(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, lines = await run_once(
        bot_env(
            DISCORD_TOKEN=TOKEN,
            MOUNTSEA_API_KEY=API_KEY,
            DATABASE_PATH=str(blocker / "bot.db"),
            DISCORD_API_BASE=f"http://127.0.0.1:{free_port()}/api/v10",  # never asked: the database is first
        ),
        tmp_path,
    )
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"database {blocker / 'bot.db'}:")
    assert f"(File exists at {blocker})" in lines[0]


async def test_healthz_names_what_is_wrong(sandbox: Sandbox, tmp_path: Path) -> None:
    """In process: a poll loop that stopped running and a lost gateway each turn /healthz to 503."""
    from bot.ops.health import probe
    from tests.bot_harness import World

    async with running_fake() as fake:
        world = World(fake, sandbox, tmp_path / "bot.db")
        async with world.bot(metrics_port=0) as bot:
            assert bot.ops_server is not None
            url = f"http://127.0.0.1:{bot.ops_server.port}/healthz"

            async def status_ok() -> bool:
                return (await get(url))[0] == 200

            await wait_until(status_ok, "/healthz to answer 200", timeout=10, interval=0.05)
            healthy, _ = await asyncio.to_thread(probe, "127.0.0.1", bot.ops_server.port)
            assert healthy

            bot.runner.loop_ran_at = time.monotonic() - 3600  # as if the loop had hung an hour ago
            status, body = await get(url)
            assert status == 503
            assert set(json.loads(body)["problems"]) == {"poll_loop"}
            healthy, text = await asyncio.to_thread(probe, "127.0.0.1", bot.ops_server.port)
            assert not healthy and "poll_loop: last ran" in text

            await fake.stop()  # Discord goes away

            async def gateway_named() -> bool:
                return "gateway" in json.loads((await get(url))[1]).get("problems", {})

            await wait_until(gateway_named, "/healthz to name the gateway", timeout=10, interval=0.05)


async def test_healthz_names_the_database_when_it_stops_answering(
    sandbox: Sandbox, tmp_path: Path, pg_url: str
) -> None:
    """PostgreSQL goes away under a running bot (its connections ended, new ones refused): /healthz
    answers 503 naming the database, and 200 again once the database is back."""
    import psycopg

    from bot.ops.config import Secret
    from tests.bot_harness import World

    async def problems(url: str) -> dict[str, str]:
        status, body = await get(url)
        found: dict[str, str] = json.loads(body).get("problems", {})
        assert (status == 503) == bool(found), (status, body)
        return found

    async with running_fake() as fake:
        world = World(fake, sandbox, tmp_path / "bot.db")
        async with world.bot(metrics_port=0, database_url=Secret(pg_url)) as bot:
            assert bot.ops_server is not None and bot.store.dialect == "postgresql"
            url = f"http://127.0.0.1:{bot.ops_server.port}/healthz"

            async def clear() -> bool:
                return not await problems(url)

            await wait_until(clear, "/healthz to report no problem", timeout=10, interval=0.05)
            with psycopg.connect(pg_url, autocommit=True) as conn:
                database = conn.execute("SELECT current_database()").fetchone()
            assert database is not None
            # From another database: PostgreSQL will not close the one a session is connected to.
            with psycopg.connect(pg_url, dbname="template1", autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{database[0]}" ALLOW_CONNECTIONS false')
                try:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE backend_type = 'client backend' AND datname = %s",
                        [database[0]],
                    )

                    async def database_named() -> dict[str, str] | None:
                        found = await problems(url)
                        return found if "database" in found else None

                    found = await wait_until(
                        database_named, "/healthz to name the database", timeout=10, interval=0.05
                    )
                    assert found["database"].startswith(("error: ", "no answer within ")), found
                finally:
                    admin.execute(f'ALTER DATABASE "{database[0]}" ALLOW_CONNECTIONS true')

            async def database_back() -> bool:
                return "database" not in await problems(url)

            await wait_until(database_back, "/healthz to stop naming the database", timeout=30, interval=0.2)


async def test_while_stopping_new_requests_are_turned_away_politely(sandbox: Sandbox, tmp_path: Path) -> None:
    from tests.bot_harness import World

    async with running_fake() as fake:
        world = World(fake, sandbox, tmp_path / "bot.db")
        async with world.bot() as bot:
            bot.stopping = True  # what close() sets first, before it waits for in-flight work
            interaction = await fake.invoke_slash("imagine", {"prompt": "a lighthouse"})
            callback = await fake.wait_for_callback(interaction)
            assert (
                callback.json["data"]["content"]
                == "The image bot is restarting. Please try again in a minute."
            )
            assert callback.json["data"]["flags"] & 64  # private
            assert callback.json["data"]["allowed_mentions"] == {"parse": []}
            assert await bot.store.get_job(1) is None
    assert not world.submits()


def table_counts(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("jobs", "usage")}


async def test_while_stopping_buttons_dialogs_menus_and_autocomplete_start_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Every kind of interaction that could start or change work gets the same private answer while
    the bot stops; autocomplete gets an empty list; nothing is written to the database."""
    from bot.core.policy.styles import Style
    from tests.bot_harness import World
    from tests.test_living_messages import MODAL, deliver_one
    from tests.test_use_as_reference import MENU

    restarting = "The image bot is restarting. Please try again in a minute."
    async with running_fake() as fake:
        world = World(fake, sandbox, tmp_path / "bot.db")
        async with world.bot() as bot:
            await bot.store.add_style(fake.guild_id, Style("Noir", "film noir"), fake.moderator_id, 0.0)
            message_id = int((await deliver_one(world, bot, 1))["id"])
            click = await fake.invoke_component("imagine:edit:1", message_id)
            dialog = (await fake.wait_for_callback(click)).json
            assert dialog["type"] == MODAL  # opened before the stop, submitted during it
            inputs = [c["custom_id"] for row in dialog["data"]["components"] for c in row["components"]]
            before = table_counts(world.db_path)

            bot.stopping = True  # what close() sets first (SIGTERM calls it), before it waits for work
            answers = [
                await fake.invoke_component("imagine:reroll:1", message_id),
                await fake.submit_modal(dialog["data"]["custom_id"], {inputs[0]: "at night", inputs[1]: ""}),
                await fake.invoke_message_command(MENU, message_id),
            ]
            for interaction in answers:
                data = (await fake.wait_for_callback(interaction)).json["data"]
                assert data["content"] == restarting
                assert data["flags"] & 64 and data["allowed_mentions"] == {"parse": []}
            typed = await fake.invoke_autocomplete("imagine", {"prompt": "a cat", "style": ""}, "style")
            answer = (await fake.wait_for_callback(typed)).json
            assert answer["type"] == 8 and answer["data"]["choices"] == []
            assert table_counts(world.db_path) == before
    assert len(world.submits()) == 1


def sample(text: str, name: str) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_metrics_count_refusals_and_time_deliveries(sandbox: Sandbox, tmp_path: Path) -> None:
    from tests.bot_harness import ShiftedClock, World, wait_for_job

    clock = ShiftedClock()
    async with running_fake() as fake:
        world = World(fake, sandbox, tmp_path / "bot.db")
        async with world.bot(metrics_port=0, clock=clock) as bot:
            assert bot.ops_server is not None
            url = f"http://127.0.0.1:{bot.ops_server.port}/metrics"
            before = (await get(url))[1]
            await bot.store.update_policy(fake.guild_id, fake.moderator_id, clock.time(), default_quota=0)
            refused = await fake.invoke_slash("imagine", {"prompt": "over the limit"})
            await fake.wait_for_callback(refused)
            await bot.store.update_policy(fake.guild_id, fake.moderator_id, clock.time(), default_quota=5)
            made = await fake.invoke_slash("imagine", {"prompt": "a harbour"})
            await fake.wait_for_callback(made)
            await wait_for_job(bot, lambda job: job.delivered_at is not None)
            clock.offset += 5  # past the settling time of the newest refusals
            after = (await get(url))[1]
    off = 'imagine_refusals_total{reason="disabled"}'  # a daily limit of 0
    assert sample(after, off) - sample(before, off) == 1
    delay = "imagine_delivery_delay_seconds_count"
    assert sample(after, delay) - sample(before, delay) == 1
    polls = 'imagine_api_request_seconds_count{endpoint="poll"}'
    assert sample(after, polls) > sample(before, polls)
    assert sample(after, 'imagine_jobs{state="running"}') == 0
