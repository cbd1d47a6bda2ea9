"""Operator commands: check, backup, export, healthcheck, --version, the sandbox's arguments, and
`/imagine-admin settings`."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.adapters.store import Store
from bot.core.models import ImageRequest, Origin
from bot.core.usage_records import EXPORT_COLUMNS
from bot.discord.setup_check import run_check
from bot.ops.config import Secret
from tests.bot_harness import World
from tests.helpers import wait_until
from tests.test_admin_commands import admin

ROOT = Path(__file__).resolve().parents[1]
ATTACH_FILES = 1 << 15
SEND_MESSAGES = 1 << 11
VIEW_CHANNEL = 1 << 10


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MOUNTSEA_", "DISCORD_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- check -------------------------------------------------------------------------------------------


async def test_check_says_everything_is_in_order(world: World, caplog: pytest.LogCaptureFixture) -> None:
    async with world.bot():  # a start syncs the commands
        pass
    out = io.StringIO()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert await run_check(world.settings(), out) == 0, out.getvalue()
    # Its own probe's 404 (a task that cannot exist) is the answer it wants, not a warning.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    text = out.getvalue()
    assert f"logged in as imagine-bot#4821 (application id {world.fake.application_id})" in text
    assert "MOUNTSEA_API_KEY: accepted" in text
    assert "commands: all 9 are synced to the dev server" in text
    assert "every permission in 1 visible channel\n" in text
    assert f"client_id={world.fake.application_id}" in text and "permissions=274878024704" in text
    assert "everything is in order" in text


async def test_check_lists_what_is_wrong(world: World) -> None:
    fake = world.fake
    art = fake.add_channel(fake.guild_id, "art")
    fake.deny_in_channel(art, fake.bot_role_id(fake.guild_id), ATTACH_FILES)
    staff = fake.add_channel(fake.guild_id, "staff")
    fake.deny_in_channel(staff, fake.guild_id, VIEW_CHANNEL)  # hidden from @everyone: on purpose
    out = io.StringIO()
    code = await run_check(world.settings(api_key=Secret("not-the-key")), out)
    text = out.getvalue()
    assert code == 1, text
    assert "PROBLEM  MOUNTSEA_API_KEY:" in text and "refused the key" in text
    assert (
        "PROBLEM  commands on the dev server" in text
        and '(missing: the "Animate" message menu, the "Use as reference" message menu, /animate, /history, '
        in text
    )
    assert f"#art ({art}): Attach Files" in text
    assert "#general" not in text and "#staff" not in text
    assert fake.sessions_started == 0  # REST only: no gateway session next to a running bot
    assert "3 problem(s) found." in text
    assert "invite link: https://discord.com/oauth2/authorize?client_id=" in text


def test_check_exit_codes_are_documented_and_a_missing_token_is_2(tmp_path: Path) -> None:
    helped = run("check", "--help")
    assert helped.returncode == 0
    said = " ".join(helped.stdout.split())
    assert "Exit codes: 0 everything is in order, 1 something is broken" in said
    assert "2 the configuration" in said
    missing = run("check", env={"MOUNTSEA_API_KEY": "k", "DATABASE_PATH": str(tmp_path / "bot.db")})
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("configuration error: DISCORD_TOKEN") and missing.stderr.count("\n") == 1


async def test_check_reports_a_refused_token(world: World) -> None:
    out = io.StringIO()
    code = await run_check(world.settings(discord_token=Secret("a.wrong.token")), out)
    assert code == 1
    assert "PROBLEM  DISCORD_TOKEN: Discord refused the token" in out.getvalue()


# -- /imagine-admin settings --------------------------------------------------------------------------


async def test_settings_shows_the_server_settings_and_missing_permissions(world: World) -> None:
    fake = world.fake
    modlog = fake.add_channel(fake.guild_id, "mod-log")
    fake.deny_in_channel(modlog, fake.bot_role_id(fake.guild_id), SEND_MESSAGES)
    async with world.bot():
        await admin(fake, "quota default", {"limit": 4})
        await admin(fake, "quota role", {"role": fake.moderator_role_id, "limit": 20})
        await admin(fake, "quota user", {"member": fake.user_id, "unlimited": True})
        await admin(fake, "quota grant", {"member": fake.moderator_id, "credits": 3})
        await admin(fake, "cooldown", {"seconds": 90})
        await admin(fake, "timezone", {"name": "Europe/Paris"})
        await admin(fake, "modlog", {"channel": modlog})
        await admin(fake, "blocklist add", {"kind": "word", "pattern": "forbidden"})
        answer = await admin(fake, "settings")
    text = answer.text
    assert "Daily limit (default): 4 a day" in text
    assert f"Role limits: <@&{fake.moderator_role_id}> 20 a day" in text
    assert "Member limits: 0 members with a limit of their own, 1 unlimited" in text
    assert "Credits in use: 3 credits held by 1 member" in text
    assert "Cooldown: 1 min 30 s" in text
    assert "Time zone (days and reports): Europe/Paris" in text
    assert "Server cap: none" in text
    assert f"Mod-log: <#{modlog}>" in text
    assert "Prompt rules: 1; bans in force: 0" in text
    assert "⚠️ In the mod-log channel I lack: Send Messages." in text
    assert "In this channel I lack" not in text


# -- export and backup -------------------------------------------------------------------------------


async def test_export_command_writes_the_same_csv_as_discord(world: World, tmp_path: Path) -> None:
    fake = world.fake
    async with world.bot() as bot:
        now = bot.clock.time()
        for n in range(5):
            await bot.store.usage.log_refusal(
                guild_id=fake.guild_id,
                channel_id=fake.channel_id,
                user_id=fake.user_id,
                prompt=f"=cmd|row {n}",
                aspect_ratio="1:1",
                ref_count=0,
                reason="bad_input",
                detail=None,
                now=now - 60 + n,
            )
        day = datetime.now(UTC).date()
        start, end = (day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()
        from_discord = (await admin(fake, "export", {"start": start, "end": end})).files[0].data
    out = tmp_path / "usage.csv"
    result = await asyncio.to_thread(
        run,
        "export",
        "--guild",
        str(fake.guild_id),
        "--from",
        start,
        "--to",
        end,
        "--out",
        str(out),
        env={"DATABASE_PATH": str(world.db_path)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == from_discord
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 5 and list(rows[0]) == list(EXPORT_COLUMNS)
    assert "5 rows" in result.stderr

    bad = await asyncio.to_thread(
        run, "export", "--guild", "1", "--from", "2025-02-30", "--to", "2025-03-01",
        env={"DATABASE_PATH": str(world.db_path)}, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "nothing exported: 2025-02-30 is not a real date"
    ]


async def test_backup_is_consistent_while_the_database_is_written(tmp_path: Path) -> None:
    db, copy = tmp_path / "bot.db", tmp_path / "backups" / "copy.db"
    store = await Store.open(db)
    stop = asyncio.Event()

    so_far = [0]

    async def keep_writing() -> int:
        while not stop.is_set():
            await store.jobs.create(ImageRequest(f"prompt {so_far[0]}" * 20), Origin(source="test"), 1.0)
            so_far[0] += 1
        return so_far[0]

    writer = asyncio.create_task(keep_writing())
    try:
        await wait_until(lambda: so_far[0] >= 20, "the writer to be under way")
        result = await asyncio.to_thread(
            run, "backup", str(copy), env={"DATABASE_PATH": str(db)}, cwd=tmp_path
        )
    finally:
        stop.set()
        written = await writer
        await store.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"backed up {db} to {copy}")
    assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.db"]  # no temporary file left
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        copied = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    assert 0 < copied <= written
    reopened = await Store.open(copy)  # a backup is a database the bot can start from
    await reopened.close()

    same = await asyncio.to_thread(run, "backup", str(db), env={"DATABASE_PATH": str(db)}, cwd=tmp_path)
    assert same.returncode == 2 and "the database's own file" in same.stderr
    missing = await asyncio.to_thread(
        run, "backup", str(copy), env={"DATABASE_PATH": str(tmp_path / "none.db")}, cwd=tmp_path
    )
    assert missing.returncode == 1 and missing.stderr.strip().startswith("backup: no database at")


# -- command line ------------------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip().startswith("imagine-bot 0.")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "99999"], "argument --port: a port from 0 to 65535 (got '99999')"),
        (["--duration", "-1"], "argument --duration: seconds, 0 or more (got '-1')"),
        (["--failure-rate", "2"], "argument --failure-rate: a share from 0 to 1 (got '2')"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_sandbox_argument_errors_are_one_line(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sandbox", *args])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_sandbox_on_a_taken_port_is_one_line_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run("sandbox", "--port", str(taken.getsockname()[1]))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot listen on 127.0.0.1:" in lines[0] and "in use" in lines[0], lines


def test_every_sandbox_option_names_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for option in ("--host", "--port", "--api-key", "--duration", "--failure-rate", "--seed"):
        assert option in help_text
    assert "port to listen on (0: any free port) (default: 8090)" in help_text
    assert "(default: 127.0.0.1)" in help_text
    assert help_text.count("(default:") >= 10


def test_sandbox_help_gives_each_option_one_default_that_reads_right(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])
    text = capsys.readouterr().out
    options = re.split(r"\n  (?=--)", text.split("options:", 1)[1])[2:]  # after -h
    for entry in options:
        said = " ".join(entry.split())
        assert said.count("(default:") == 1, said  # one default each, never two
        assert (
            "(default: None)" not in said and "(default: True)" not in said and "(default: False)" not in said
        )
    joined = " ".join(text.split())
    assert (
        "--no-reference-check accept reference image URLs without downloading them (default: each" in joined
    )
    assert (
        "simulate an outage S seconds after start: every request then answers 503 (default: no outage)"
        in joined
    )


def test_healthcheck_without_a_running_bot_fails_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("healthcheck", env={"METRICS_PORT": str(port)}, cwd=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "no answer from" in result.stderr
    unset = run("healthcheck", cwd=tmp_path)
    assert unset.returncode == 1 and "METRICS_PORT is not set" in unset.stderr


async def test_a_backup_killed_half_way_leaves_the_previous_backup_intact(tmp_path: Path) -> None:
    db, copy = tmp_path / "bot.db", tmp_path / "copy.db"
    store = await Store.open(db)
    await store.jobs.create(ImageRequest("the first"), Origin(source="test"), 1.0)
    await store.close()
    env = {"DATABASE_PATH": str(db)}
    assert (await asyncio.to_thread(run, "backup", str(copy), env=env, cwd=tmp_path)).returncode == 0

    # Another connection holds the database exclusively (rollback journal mode), so the backup is
    # stuck in its first step, with its temporary file open: kill it there.
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MOUNTSEA_", "DISCORD_"))}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "backup", str(copy)),
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        partial = await wait_until(
            lambda: list(tmp_path.glob(".copy.db.*.tmp")), "the backup to open its temporary file", timeout=20
        )
        # Into the step the lock holds it in. Nothing outside shows that step begin; the lock keeps
        # the copy from going further however long this is.
        await asyncio.sleep(0.3)
        process.kill()
        await process.wait()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with sqlite3.connect(copy) as conn:  # the earlier backup, untouched and whole
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT prompt FROM jobs").fetchall() == [("the first",)]
    # The next backup clears the killed one's leftover and succeeds.
    assert (await asyncio.to_thread(run, "backup", str(copy), env=env, cwd=tmp_path)).returncode == 0
    assert not partial[0].exists()
