"""`python -m bot migrate-db`: a SQLite database written by the bot's own flows, copied into a real
PostgreSQL, every table counted, rows compared, re-runs safe, and the copy usable by the bot."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from bot.__main__ import main
from bot.adapters.store import Store
from bot.adapters.store.schema import TABLES
from bot.core.models import ImageRequest, JobStatus, Origin
from bot.core.policy.quotas import Member
from bot.core.policy.styles import Style

GUILD, MOD, NOW = 100, 999, 1_800_000_000.0


async def fill(path: Path) -> None:
    """What a few days of a server leave behind: jobs in every state, usage, settings, moderation."""
    store = await Store.open(path)
    try:
        await store.settings.update_policy(
            GUILD, MOD, NOW, default_quota=20, timezone="Europe/Berlin", daily_cap=500, max_running=100
        )
        await store.settings.set_role_quota(GUILD, 77, 5, MOD, NOW)
        await store.settings.set_user_quota(GUILD, 3, limit=None, unlimited=True, actor_id=MOD, now=NOW)
        await store.settings.grant_credits(GUILD, 4, 2, MOD, NOW)
        await store.settings.ban(GUILD, 9, reason="spam", expires_at=NOW + 3600, actor_id=MOD, now=NOW)
        await store.settings.add_rule(GUILD, "word", "badword", MOD, NOW)
        await store.ops.set_meta("commands_digest", "abc")
        await store.styles.add(GUILD, Style("Anime", "in anime style"), MOD, NOW)
        await store.styles.save_member_settings(
            GUILD, 2, NOW, aspect_ratio="16:9", style="Anime", delivery="dm"
        )
        for n in range(30):
            member = Member(GUILD, 1 + n % 4)
            origin = Origin(guild_id=GUILD, channel_id=5, user_id=member.user_id, interaction_token=f"tok{n}")
            decision, jobs = await store.usage.admit(
                member,
                ImageRequest(f"picture {n}", "1:1", style="Anime", style_text="in anime style"),
                origin,
                NOW + n,
                20,
            )
            job = jobs[0] if jobs else None
            assert job is not None, decision
            if n % 5 == 0:
                continue  # still queued
            await store.jobs.mark_running(job.id, f"task-{n}", NOW + n, NOW + n + 3)
            if n % 5 == 1:
                continue  # running
            if n % 5 == 2:
                await store.jobs.mark_ended(job.id, JobStatus.FAILED, "the API said no", NOW + n + 9)
                continue
            await store.jobs.mark_completed(job.id, [f"https://x/{n}.png"], NOW + n + 9, f"trace-{n}")
            await store.deliveries.intend(job.id, [1], "channel", NOW + n + 9)
            await store.deliveries.settle(
                job.id, [1], "sent", NOW + n + 10, message_id=10_000 + n, channel_id=5
            )
            await store.jobs.mark_delivered(
                job.id, delivery="channel", result_message_id=10_000 + n, now=NOW + n + 10
            )
        await store.usage.log_refusal(guild_id=GUILD, channel_id=5, user_id=9, prompt="x", aspect_ratio=None,
                                ref_count=0, reason="bad_input", detail="empty", now=NOW)  # fmt: skip
        decision, _ = await store.usage.admit(
            Member(GUILD, 9), ImageRequest("again"), Origin(guild_id=GUILD), NOW, 20
        )
        assert decision.reason == "banned"
        # Personal use: a usage row with no server, and a ban from personal use.
        await store.personal.ban(77, reason="spam", expires_at=None, now=NOW)
        origin = Origin(user_id=78, context="dm")
        decision, jobs = await store.personal.admit(78, ImageRequest("mine"), origin, NOW, 5, 2)
        job = jobs[0] if jobs else None
        assert job is not None and job.guild_id is None, decision
    finally:
        await store.close()


def rows_of(conn: Any, table: str) -> list[tuple[Any, ...]]:
    keyed = (
        "meta",
        "guild_settings",
        "role_quotas",
        "role_count_limits",
        "user_quotas",
        "bans",
        "personal_bans",
        "member_settings",
        "prompt_terms",
        "deliveries",
    )
    order = "id" if table not in keyed else "1, 2, 3" if table == "prompt_terms" else "1, 2"
    columns = COLUMNS[table]
    return [tuple(r) for r in conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")]


COLUMNS: dict[str, list[str]] = {}


def test_migrate_db_copies_everything_once(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bot.db"
    asyncio.run(fill(source))
    src = sqlite3.connect(source)
    with src:  # a table the store has no writer for yet (revision 0014's per-role image counts)
        src.execute("INSERT INTO role_count_limits VALUES (?, 77, 2), (?, 78, 4)", [GUILD, GUILD])
    for table in TABLES:
        columns = [str(r[1]) for r in src.execute(f"PRAGMA table_info({table})")]
        COLUMNS[table] = [c for c in columns if c not in ("lease_owner", "leased_until")]

    assert main(["migrate-db", "--from", str(source), "--to", pg_url]) == 0
    out = capsys.readouterr().out
    assert "counts verified" in out and "password" not in out

    with psycopg.connect(pg_url) as dst:
        for table in TABLES:
            expected = rows_of(src, table)
            assert expected, table  # every table has rows to copy
            assert rows_of(dst, table) == expected, table

    # Again: refused, nothing doubled; with --replace: the same rows, once.
    assert main(["migrate-db", "--from", str(source), "--to", pg_url]) == 2
    assert "already holds rows" in capsys.readouterr().err
    assert main(["migrate-db", "--from", str(source), "--to", pg_url, "--replace"]) == 0
    with psycopg.connect(pg_url) as dst:
        for table in TABLES:
            assert rows_of(dst, table) == rows_of(src, table), table
    max_job = int(src.execute("SELECT MAX(id) FROM jobs").fetchone()[0])
    src.close()

    async def carry_on() -> None:
        # The bot carries on from the copy: new ids after the copied ones, the state as it was.
        store = await Store.open_url(pg_url)
        try:
            resumed = await store.jobs.to_resume("discord", now=NOW + 100)
            assert len(resumed) == 13  # queued (6 + the personal one) and failed-but-not-told (6)
            job = await store.jobs.create(ImageRequest("after the move"), Origin(), NOW + 100)
            assert job.id == max_job + 1
            assert (await store.settings.guild_policy(GUILD)).timezone == "Europe/Berlin"
            assert [b.user_id for b in await store.settings.bans(GUILD, NOW)] == [9]
            assert [b.user_id for b in await store.personal.bans(NOW)] == [77]
        finally:
            await store.close()

    asyncio.run(carry_on())


def test_migrate_db_needs_a_source_and_a_postgresql_target(tmp_path: Path, pg_url: str) -> None:
    assert main(["migrate-db", "--from", str(tmp_path / "missing.db"), "--to", pg_url]) == 2
    assert main(["migrate-db", "--from", str(tmp_path / "missing.db"), "--to", "mysql://x"]) == 2


def test_migrate_db_lists_conflicts_before_it_starts(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows SQLite accepted but PostgreSQL would refuse are listed, and nothing is copied: here a
    member limit without a server (a key SQLite created before the migration chain may hold NULL).
    Style names cannot conflict any more: revision 0010 folded them alike on both backends."""
    from tests.legacy_fixtures import sqlite_legacy

    source = tmp_path / "bot.db"
    sqlite_legacy(source, 9)
    conn = sqlite3.connect(source)
    conn.execute("INSERT INTO user_quotas (guild_id, user_id, daily_limit) VALUES (NULL, 5, 1)")
    conn.commit()
    conn.close()

    assert main(["migrate-db", "--from", str(source), "--to", pg_url]) == 2
    err = capsys.readouterr().err
    assert "1 row in SQLite would break PostgreSQL's constraints; nothing copied" in err
    assert "user_quotas: guild_id is empty" in err
    with psycopg.connect(pg_url) as dst:
        assert dst.execute("SELECT to_regclass('jobs')").fetchone() == (None,)


def test_migrate_db_says_what_is_wrong_with_the_target(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file path for --to is named as the mistake; a server that refuses the role is quoted, in one
    line, with the address once and never its password."""
    source = tmp_path / "bot.db"
    asyncio.run(fill(source))
    assert main(["migrate-db", "--from", str(source), "--to", "data/other.db"]) == 2
    said = capsys.readouterr().err
    assert "--to must be a postgresql:// URL (got 'data/other.db')" in said and "say where to" not in said

    parts = urlsplit(pg_url)
    nobody = urlunsplit(parts._replace(netloc=f"nobody:pw-secret-9@{parts.hostname or ''}"))
    assert main(["migrate-db", "--from", str(source), "--to", nobody]) == 1
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and said.count("postgresql://nobody:***@") == 1, said
    assert 'the server answered: role "nobody" does not exist' in said and "cannot reach" not in said
    assert "pw-secret-9" not in said
