"""The operator's personal-use commands, run as the operator runs them: `python -m bot ban`, `unban`,
`bans`, and the personal section of `stats`."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from bot.adapters.store import Store
from bot.core.models import DM, USER_INSTALL_GUILD, ImageRequest, Origin
from bot.core.policy.quotas import BANNED
from tests.test_ops_commands import run

USER = 1_234_567_890_123_456_789


def test_ban_list_and_unban_from_the_terminal(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "bot.db")}
    banned = run("ban", str(USER), "--reason", "spamming people", "--for", "7d", env=env)
    assert banned.returncode == 0, banned.stderr
    assert f"user {USER} is banned from personal use until" in banned.stdout
    assert run("ban", str(USER + 1), env=env).returncode == 0

    listed = run("bans", env=env)
    assert listed.returncode == 0
    header, *lines = listed.stdout.splitlines()
    assert header.split() == ["USER", "ID", "SINCE", "UNTIL", "REASON"]
    assert len(lines) == 2 and lines[0].split()[-1] == "unbanned" and lines[0].startswith(str(USER + 1))
    assert lines[1].startswith(str(USER)) and "spamming people" in lines[1]
    # One date format for every date: since and until alike.
    dates = re.findall(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", lines[1])
    assert len(dates) == 2 and header.index("UNTIL") == lines[1].index(dates[1])

    async def admission() -> str | None:
        store = await Store.open(tmp_path / "bot.db")
        try:
            origin = Origin(user_id=USER, context=DM)
            decision, _ = await store.admit_personal(USER, ImageRequest("x"), origin, time.time(), 5, 2)
        finally:
            await store.close()
        return decision.reason

    assert asyncio.run(admission()) == BANNED
    lifted = run("unban", str(USER), env=env)
    assert lifted.returncode == 0 and "may use the bot personally again" in lifted.stdout
    assert "was not banned" in run("unban", str(USER), env=env).stdout
    assert asyncio.run(admission()) is None  # admitted
    assert run("bans", env=env).stdout.splitlines()[1].startswith(str(USER + 1))


def test_a_shorter_ban_does_not_shorten_a_longer_one_or_drop_its_reason(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "bot.db")}
    assert run("ban", str(USER), "--reason", "spamming people", "--for", "7d", env=env).returncode == 0
    shorter = run("ban", str(USER), "--for", "12h", env=env)
    assert shorter.returncode == 1 and shorter.stdout == ""
    assert (
        "already banned from personal use until" in shorter.stderr and "(spamming people)" in shorter.stderr
    )
    assert "kept it. Pass --replace" in shorter.stderr

    def until() -> str:
        return run("bans", env=env).stdout.splitlines()[1]

    week = until()
    assert "spamming people" in week
    longer = run("ban", str(USER), "--for", "2w", env=env)
    assert longer.returncode == 0 and "(reason kept: spamming people)" in longer.stdout
    assert until() != week and "spamming people" in until()
    replaced = run("ban", str(USER), "--for", "12h", "--replace", "--reason", "calmer now", env=env)
    assert replaced.returncode == 0 and "calmer now" in until()


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "bot.db")}
    for args in (("ban", "someone"), ("ban", str(USER), "--for", "soon"), ("unban",)):
        result = run(*args, env=env)
        assert result.returncode == 2 and "Traceback" not in result.stderr, args


def test_stats_reports_personal_use_apart(tmp_path: Path) -> None:
    async def fill() -> None:
        store = await Store.open(tmp_path / "bot.db")
        try:
            now = time.time()
            for n, context in enumerate((DM, USER_INSTALL_GUILD, DM)):
                origin = Origin(user_id=USER + n, context=context, place_guild_id=7)
                await store.admit_personal(USER + n, ImageRequest("x"), origin, now, 5, 2)
            await store.admit_personal(USER, ImageRequest("y"), Origin(user_id=USER, context=DM), now, 0, 2)
        finally:
            await store.close()

    asyncio.run(fill())
    result = run("stats", env={"DATABASE_PATH": str(tmp_path / "bot.db")})
    assert result.returncode == 0, result.stderr
    servers, personal = result.stdout.split("Personal use (DMs, group DMs and servers without the bot)")
    assert "Generations: 0" in servers  # personal use is not counted as a server's
    assert "Generations: 3" in personal and "Refused: 1 (disabled 1)" in personal
    assert "3 people · DMs with the bot 2, servers without the bot 1" in personal
