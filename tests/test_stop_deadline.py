"""A stop signal ends the bot within its deadline whatever Discord does, and an outage's reconnect
attempts are logged one line each: a real `python -m bot` process against the fake Discord, which then
either stops answering (a relay in between stops passing anything on, closing nothing) or goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from pathlib import Path

import pytest

from bot.discord.launch import STOP_DEADLINE
from sandbox.server import Sandbox
from testing.fake_discord import running_fake
from tests.helpers import wait_until
from tests.test_operations import TOKEN, bot_process, wait_healthy

# The deadline, plus the time a loaded machine may take to notice the exit.
GRACE = 1.5


class Relay:
    """A TCP relay in front of the fake Discord; `go_silent` cuts every connection and from then on
    accepts new ones without ever answering: Discord that stopped responding, with no gap in which a
    reconnect could be refused instead."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.silent = False
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()

    def go_away(self) -> None:
        """Stop listening and cut every connection: each reconnect is refused at once."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()

    def go_silent(self) -> None:
        """Nothing reaches either side any more, and nothing is closed: the bot's open gateway
        connection hears nothing (not even the answer to its close), new connections hang."""
        self.silent = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.silent:
            return  # held open, never answered
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers.append(up_writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await source.read(65536):
                    if not self.silent:  # silent: read and dropped, so that no side is ever closed
                        sink.write(data)
                        await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_sigterm_exits_within_the_deadline_when_discord_stops_answering(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    async with running_fake(token=TOKEN) as fake:
        relay = Relay(fake.port)
        await relay.start()
        fake.port = relay.port  # every URL the fake hands out (gateway, resume, CDN) now goes through it
        try:
            async with bot_process(fake, sandbox, tmp_path / "bot.db") as bot:
                await wait_healthy(bot)
                relay.go_silent()
                started = time.monotonic()
                bot.process.send_signal(signal.SIGTERM)
                assert await bot.wait(STOP_DEADLINE + GRACE) == 0, bot.stderr.decode()[-2000:]
                assert time.monotonic() - started < STOP_DEADLINE + GRACE
        finally:
            await relay.stop()
    records = [json.loads(line) for line in bot.stderr.decode().splitlines()]
    assert any("SIGTERM received" in r["message"] for r in records)


@pytest.mark.timeout(240)  # waits for discord.py's reconnect back-off to grow long: up to 150 s
async def test_sigterm_during_the_reconnect_back_off_exits_within_the_deadline(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Discord goes away; discord.py's back-off doubles after each refused reconnect. Once it has said
    it will sleep well past the deadline, SIGTERM must still end the process within it. Each attempt is
    one log line naming its cause (no traceback)."""
    async with running_fake(token=TOKEN) as fake:
        relay = Relay(fake.port)
        await relay.start()
        fake.port = relay.port
        try:
            async with bot_process(
                fake, sandbox, tmp_path / "bot.db", LOG_FORMAT="text", LOG_LEVEL="INFO"
            ) as bot:
                await wait_healthy(bot)
                relay.go_away()  # Discord goes away: every reconnect is refused
                sleep = await wait_until(  # the sleeps double: 2, 4, 8, 16, 32 s at most
                    lambda: _long_back_off(bot.stderr.decode()),
                    "discord.py to announce a long reconnect back-off",
                    timeout=150,
                    interval=0.05,
                )
                started = time.monotonic()
                bot.process.send_signal(signal.SIGTERM)
                assert await bot.wait(STOP_DEADLINE + GRACE) == 0, f"back-off of {sleep} s"
                assert time.monotonic() - started < STOP_DEADLINE + GRACE
        finally:
            await relay.stop()
    text = bot.stderr.decode()
    attempts = [line for line in text.splitlines() if "Attempting a reconnect" in line]
    assert len(attempts) >= 2
    for line in attempts:
        assert "Error: " in line, line  # the cause, on the same line
    assert "Traceback" not in text, text[-3000:]


def _long_back_off(log_text: str) -> float | None:
    """The first reconnect sleep discord.py announced that outlasts the deadline by a margin."""
    for seconds in re.findall(r"Attempting a reconnect for shard ID \d+ in ([\d.]+)s", log_text):
        if float(seconds) > STOP_DEADLINE + GRACE + 3:
            return float(seconds)
    return None


async def test_sigterm_exits_within_the_deadline_while_the_database_hangs(
    sandbox: Sandbox, tmp_path: Path, pg_url: str
) -> None:
    """Every statement on the jobs table waits for another session's lock: releasing the leases, the
    poll loop and the database threads never finish. The stop still ends within its deadline."""
    import psycopg

    async with (
        running_fake(token=TOKEN) as fake,
        bot_process(fake, sandbox, tmp_path / "bot.db", DATABASE_URL=pg_url) as bot,
    ):
        await wait_healthy(bot)
        with psycopg.connect(pg_url) as locker:
            locker.execute("LOCK TABLE jobs, usage IN ACCESS EXCLUSIVE MODE")
            try:
                await asyncio.sleep(0.5)  # the poll loop is now waiting on the lock
                started = time.monotonic()
                bot.process.send_signal(signal.SIGTERM)
                assert await bot.wait(STOP_DEADLINE + GRACE) == 0
                assert time.monotonic() - started < STOP_DEADLINE + GRACE
            finally:
                locker.rollback()
    assert b"SIGTERM received" in bot.stderr
