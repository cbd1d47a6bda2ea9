"""Admission within a bounded time: a locked database cannot make Discord expire an interaction,
prompt rules are compiled once per server and checked outside any transaction, a server's rules are
capped, and bad input in the Edit dialog is logged like /imagine's."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.store import Store
from bot.core.models import JobStatus
from bot.core.policy.prompt_rules import MAX_RULES
from bot.core.policy.quotas import BAD_INPUT, BLOCKED_PROMPT, UNCHECKED_TEXT
from bot.core.policy.rulebook import RuleBook
from bot.core.usage_records import EXPORT_COLUMNS
from bot.discord.requests import ACCEPTED_LATE, ADMISSION_BUDGET
from sandbox.server import Sandbox
from testing.fake_discord import running_fake
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.helpers import wait_until

DEFERRED = 5
MODAL = 9
DISCORD_DEADLINE = 3.0


@pytest.fixture
async def strict_world(sandbox: Sandbox, db_path: Path) -> AsyncIterator[World]:
    """A fake Discord that, like Discord, answers 10062 to a callback after 3 seconds."""
    async with running_fake(callback_deadline=DISCORD_DEADLINE) as fake:
        yield World(fake, sandbox, db_path)


def hold_write_lock(db_path: Path) -> sqlite3.Connection:
    """Another connection (as another process would) takes the database's write lock and keeps it."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


async def usage_rows(store: Store, guild: int) -> list[dict[str, object]]:
    rows = await store.usage.export(guild, 0, time.time() + 60, 100)
    return [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows]


async def test_a_locked_database_defers_privately_and_the_answer_follows(strict_world: World) -> None:
    fake = strict_world.fake
    other = fake.add_member(fake.guild_id, username="other")
    async with strict_world.bot() as bot:
        await bot.store.settings.add_rule(fake.guild_id, "word", "moon", fake.owner_id, time.time())
        lock = hold_write_lock(strict_world.db_path)
        try:
            asker = await fake.invoke_slash("imagine", {"prompt": "a lighthouse at dusk"})
            blocked = await fake.invoke_slash("imagine", {"prompt": "a full m o o n"}, user_id=other)
            for interaction in (asker, blocked):
                callback = await fake.wait_for_callback(interaction, timeout=DISCORD_DEADLINE)
                assert callback.json["type"] == DEFERRED
                assert callback.json["data"]["flags"] & EPHEMERAL  # privately: the outcome is not known yet
                assert callback.received_at - interaction.sent_at < ADMISSION_BUDGET + 1.0
            # Time passing is what is tested here: well past Discord's deadline (the answer must still
            # follow), well within SQLite's busy timeout. While the lock is held nothing can be sent.
            await asyncio.sleep(4.0)
            assert not strict_world.submits()
        finally:
            lock.rollback()
            lock.close()

        # The answers follow as soon as the database is free again.
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, timeout=15.0)
        path = f"/webhooks/{fake.application_id}/{asker.token}"
        followups = [r for r in fake.requests if r.method == "POST" and r.path == path]
        assert followups[0].json["content"] == ACCEPTED_LATE and followups[0].json["flags"] & EPHEMERAL
        status = followups[1].json
        assert not status.get("flags", 0) & EPHEMERAL and "Queued" in status["content"]
        assert status["allowed_mentions"] == {"parse": []}
        assert job.message_id is not None and job.message_id in asker.followup_ids
        [post] = strict_world.bot_posts()
        assert int(post.json["message_reference"]["message_id"]) == job.message_id  # replies to the status

        refusal = await fake.wait_for_request(
            lambda r: r.method == "POST" and r.path == f"/webhooks/{fake.application_id}/{blocked.token}"
        )
        assert refusal.json["flags"] & EPHEMERAL
        assert refusal.json["content"] == "This prompt is not allowed in this server. Please rephrase it."
        rows = await usage_rows(bot.store, fake.guild_id)
    assert sorted((r["user_id"], r["outcome"], r["reason"] or "") for r in rows) == sorted(
        [(fake.user_id, "completed", ""), (other, "refused", BLOCKED_PROMPT)]
    )
    assert not any(r.path.endswith("/callback") and r.status == 404 for r in fake.requests)


async def refused_rows(store: Store, guild: int) -> list[dict[str, object]]:
    return [row for row in await usage_rows(store, guild) if row["outcome"] == "refused"]


async def test_rules_are_compiled_once_and_again_only_when_they_change(db_path: Path) -> None:
    store = await Store.open(db_path)
    try:
        book = RuleBook(store.settings)
        guild, mod = 5, 9
        assert await book.check(guild, "anything") is None
        await store.settings.add_rule(guild, "word", "zebra", mod, 1.0)
        first = await book.compiled(guild)
        assert await book.compiled(guild) is first  # unchanged rules: the same compilation
        match = await book.check(guild, "a z 3 b r 4 crossing")
        assert match is not None and match.rule is not None and match.rule.pattern == "zebra"
        rule = await store.settings.add_rule(guild, "regex", "red\\s*planet", mod, 2.0)
        second = await book.compiled(guild)
        assert second is not first and len(second) == 2
        await store.settings.remove_rule(guild, rule.id, mod, 3.0)
        assert len(await book.compiled(guild)) == 1
        assert await book.check(guild, "the red planet") is None
        assert await book.check(None, "zebra") is None  # no server, no server rules

        # Checking reads nothing under a transaction: it works while another connection writes.
        lock = hold_write_lock(db_path)
        try:
            async with asyncio.timeout(2.0):
                assert await book.check(guild, "zebra") is not None
        finally:
            lock.rollback()
            lock.close()
    finally:
        await store.close()


async def test_a_server_has_at_most_max_rules(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        now = time.time()
        for n in range(MAX_RULES):
            await bot.store.settings.add_rule(fake.guild_id, "word", f"word{n}", fake.moderator_id, now)
        interaction = await fake.invoke_slash(
            "imagine-admin",
            {"kind": "word", "pattern": "one too many"},
            subcommand="blocklist add",
            user_id=fake.moderator_id,
        )
        answer = (await fake.wait_for_callback(interaction)).json["data"]
        assert answer["flags"] & EPHEMERAL
        assert answer["content"].startswith(f"That rule was not added: this server already has {MAX_RULES}")
        assert len(await bot.store.settings.rules(fake.guild_id)) == MAX_RULES

        # With a thousand rules the last one is in force, spaced out or not.
        spaced = " ".join(f"word{MAX_RULES - 1}")
        refused = await fake.invoke_slash("imagine", {"prompt": f"a {spaced} here"})
        callback = (await fake.wait_for_callback(refused)).json
        assert callback["type"] == 4 and "not allowed" in callback["data"]["content"]
        allowed = await fake.invoke_slash("imagine", {"prompt": "a wordy poem"})
        assert (await fake.wait_for_callback(allowed)).json["type"] == DEFERRED


async def test_a_prompt_too_long_once_normalized_is_refused_as_unchecked(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await bot.store.settings.add_rule(fake.guild_id, "word", "zebra", fake.moderator_id, time.time())
        # 5000 characters, each of which NFKC spells out as 18 letters.
        interaction = await fake.invoke_slash("imagine", {"prompt": "\ufdfa" * 5000})
        answer = (await fake.wait_for_callback(interaction)).json
        assert answer["type"] == 4 and answer["data"]["flags"] & EPHEMERAL
        assert answer["data"]["content"] == UNCHECKED_TEXT.english()
        [row] = await usage_rows(bot.store, fake.guild_id)
    assert (row["outcome"], row["reason"], row["counted"]) == ("refused", BLOCKED_PROMPT, 0)
    assert str(row["detail"]).startswith("unchecked: over 20000 characters")
    assert not world.submits()


async def test_bad_input_in_the_edit_dialog_is_logged_like_imagine(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await fake.invoke_slash("imagine", {"prompt": "a fox"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        click = await fake.invoke_component("imagine:edit:1", job.result_message_id or 0)
        modal = (await fake.wait_for_callback(click)).json
        assert modal["type"] == MODAL
        prompt_id, ratio_id = (
            c["custom_id"] for row in modal["data"]["components"] for c in row["components"]
        )
        for fields in ({prompt_id: "a fox at night", ratio_id: "7:5"}, {prompt_id: "   ", ratio_id: ""}):
            submitted = await fake.submit_modal(modal["data"]["custom_id"], fields)
            answer = (await fake.wait_for_callback(submitted)).json
            assert answer["type"] == 4 and answer["data"]["flags"] & EPHEMERAL

        async def both_logged() -> list[dict[str, object]] | None:  # answered first, logged right after
            found = await refused_rows(bot.store, fake.guild_id)
            return found if len(found) >= 2 else None

        refusals = await wait_until(both_logged, "both refusals to be logged", timeout=5.0)
    assert [(r["reason"], r["counted"], r["aspect_ratio"]) for r in refusals] == [
        (BAD_INPUT, 0, "7:5"),
        (BAD_INPUT, 0, None),
    ]
    assert "aspect ratio" in str(refusals[0]["detail"]) and refusals[0]["prompt"] == "a fox at night"
    assert len(world.submits()) == 1
