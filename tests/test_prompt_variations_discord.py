"""Prompt variations through Discord (issue 20): the real bot against the fake Discord and the sandbox, on a
real SQLite file. A prompt with braces gets a private preview; only Confirm bills, one request (and one
message) per expanded prompt; Cancel, another member's press, an expired preview and every refusal bill
nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from bot.core.models import JobStatus
from bot.core.policy.styles import Style
from sandbox.server import Sandbox
from testing.fake_discord import FakeInteraction, running_fake
from tests.bot_harness import EPHEMERAL, ShiftedClock, World, wait_for_job
from tests.helpers import wait_until

MESSAGE = 4  # CHANNEL_MESSAGE_WITH_SOURCE
DEFERRED = 5
UPDATE = 7  # UPDATE_MESSAGE: the preview edited in place


def usage_rows(world: World) -> list[tuple[str, str, int]]:
    """(prompt, outcome, counted) of every usage row, read from the database file itself."""
    with sqlite3.connect(world.db_path) as db:
        return [(p, o, int(c or 0)) for p, o, c in db.execute("SELECT prompt, outcome, counted FROM usage")]


def jobs_made(world: World) -> list[str]:
    with sqlite3.connect(world.db_path) as db:
        return [p for (p,) in db.execute("SELECT prompt FROM jobs ORDER BY id")]


async def preview_of(world: World, prompt: str, **kwargs: Any) -> tuple[FakeInteraction, dict[str, Any]]:
    """Run /imagine and return the interaction and its private answer (the preview or a refusal)."""
    interaction = await world.fake.invoke_slash("imagine", {"prompt": prompt}, **kwargs)
    callback = await world.fake.wait_for_callback(interaction)
    assert callback.json["type"] == MESSAGE, callback.json
    data: dict[str, Any] = callback.json["data"]
    assert data["flags"] & EPHEMERAL
    return interaction, data


def button(data: dict[str, Any], action: str) -> str:
    ids = [c["custom_id"] for row in data.get("components", []) for c in row["components"]]
    [found] = [i for i in ids if f":{action}:" in i]
    return found


async def press(
    world: World, preview: FakeInteraction, data: dict[str, Any], action: str, **kwargs: Any
) -> tuple[FakeInteraction, dict[str, Any]]:
    click = await world.fake.invoke_component(
        button(data, action), preview.original_message_id or 0, **kwargs
    )
    answer = await world.fake.wait_for_callback(click)
    return click, answer.json


def fake_buttons(world: World, preview: FakeInteraction) -> list[Any]:
    return list(world.fake.messages[preview.original_message_id or 0].get("components") or [])


async def test_confirm_makes_one_request_and_one_message_per_expanded_prompt(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await bot.store.settings.update_policy(fake.guild_id, fake.owner_id, bot.clock.time(), max_running=10)
        preview, data = await preview_of(world, "a {red, blue} car in {rain, snow}")
        content = data["content"]
        expanded = ["a red car in rain", "a red car in snow", "a blue car in rain", "a blue car in snow"]
        for i, prompt in enumerate(expanded, 1):
            assert f"**{i}.** {prompt}" in content
        assert "4 images (4 × 1)" in content
        # Nothing is written or sent before Confirm.
        await world.settle(bot)
        assert usage_rows(world) == [] and jobs_made(world) == [] and world.submits() == []

        click, answer = await press(world, preview, data, "confirm")
        assert answer["type"] == UPDATE and answer["data"]["components"] == []
        for job_id in range(1, 5):
            await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=job_id)
        await world.settle(bot)

    assert jobs_made(world) == expanded
    assert sorted(s.json["prompt"] for s in world.submits()) == sorted(expanded)
    assert sorted(usage_rows(world)) == sorted((p, "completed", 1) for p in expanded)
    # Four status messages (public follow-ups of the Confirm press), four images each replying to its own.
    statuses = [fake.messages[m] for m in click.followup_ids]
    assert len(statuses) == 4 and not any(s["flags"] & EPHEMERAL for s in statuses)
    posts = world.bot_posts()
    assert len(posts) == 4
    replied_to = {int(p.json["message_reference"]["message_id"]) for p in posts}
    assert replied_to == set(click.followup_ids)
    shown = [[p for p in expanded if f"> {p}\n" in post.json["content"]] for post in posts]
    assert sorted(found for [found] in shown) == sorted(expanded)  # each image names its own prompt
    summary = fake.messages[preview.original_message_id or 0]["content"]
    assert "4 requests were made" in summary


async def test_cancel_makes_nothing_and_bills_nothing(world: World) -> None:
    async with world.bot() as bot:
        preview, data = await preview_of(world, "a {cat, dog} on a sofa")
        _, answer = await press(world, preview, data, "cancel")
        assert answer["type"] == UPDATE
        assert "nothing was made" in answer["data"]["content"]
        assert fake_buttons(world, preview) == []
        await world.settle(bot)
    assert usage_rows(world) == [] and jobs_made(world) == [] and world.submits() == []


async def test_only_the_requester_can_press_confirm_or_cancel(world: World) -> None:
    fake = world.fake
    other = fake.add_user("someone-else")
    fake.add_member(fake.guild_id, other)
    async with world.bot() as bot:
        preview, data = await preview_of(world, "a {cat, dog} on a sofa")
        for action in ("confirm", "cancel"):
            _, answer = await press(world, preview, data, action, user_id=other)
            assert answer["type"] == MESSAGE and answer["data"]["flags"] & EPHEMERAL
            assert "not yours" in answer["data"]["content"]
        await world.settle(bot)
        assert jobs_made(world) == [] and usage_rows(world) == []
        # The requester's preview is untouched and still works.
        assert fake.messages[preview.original_message_id or 0]["components"]
        _, answer = await press(world, preview, data, "confirm")
        assert answer["type"] == UPDATE
        for job_id in (1, 2):
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id)
    assert jobs_made(world) == ["a cat on a sofa", "a dog on a sofa"]


async def test_a_preview_expires_with_the_interaction_and_with_a_restart(world: World) -> None:
    clock = ShiftedClock()
    async with world.bot(clock=clock) as bot:
        preview, data = await preview_of(world, "a {cat, dog} on a sofa")
        clock.offset = 15 * 60 + 1  # the /imagine interaction is dead by now
        _, answer = await press(world, preview, data, "confirm")
        assert answer["type"] == UPDATE and answer["data"]["components"] == []
        assert "expired" in answer["data"]["content"] and "Nothing was made" in answer["data"]["content"]
        second, second_data = await preview_of(world, "a {red, blue} bird")
        await world.settle(bot)
    # A restart: the new process has no preview in memory, and says so rather than failing.
    async with world.bot() as bot:
        _, answer = await press(world, second, second_data, "confirm")
        assert answer["type"] == UPDATE and "expired" in answer["data"]["content"]
        await world.settle(bot)
    assert jobs_made(world) == [] and usage_rows(world) == [] and world.submits() == []


async def test_more_combinations_than_the_limit_are_refused_naming_both_numbers(world: World) -> None:
    async with world.bot() as bot:
        _, data = await preview_of(world, "a {red, blue, green} car in {rain, snow}")
        assert "components" not in data or not data["components"]
        assert "6 prompts" in data["content"] and "at most 4 images" in data["content"]
        # Ten thousand combinations: the same refusal, computed without expanding them.
        _, data = await preview_of(world, "x" + "{a, b, c, d, e, f, g, h, i, j}" * 4)
        assert "10000 prompts" in data["content"]
        await world.settle(bot)
    assert jobs_made(world) == [] and world.submits() == []
    assert all(counted == 0 for _, _, counted in usage_rows(world))


async def test_a_rule_blocking_one_expanded_prompt_refuses_naming_it(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await bot.store.settings.add_rule(fake.guild_id, "word", "blue", fake.owner_id, bot.clock.time())
        _, data = await preview_of(world, "a {red, blue} car")
        assert "a blue car" in data["content"] and "a red car" not in data["content"]
        assert "not allowed" in data["content"]
        await world.settle(bot)
    assert jobs_made(world) == [] and world.submits() == []
    assert usage_rows(world) == [("a blue car", "refused", 0)]


async def test_the_length_limit_applies_to_each_expanded_prompt_with_the_style(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        style = Style("grainy", "shot on grainy film, " * 10)
        await bot.store.styles.add(fake.guild_id, style, fake.owner_id, bot.clock.time())
        long = "a very long description " * 203  # fits alone (4,872 characters), not with the style
        interaction = await fake.invoke_slash(
            "imagine", {"prompt": f"{{{long}, a short one}}", "style": "grainy"}
        )
        callback = await fake.wait_for_callback(interaction)
        content = callback.json["data"]["content"]
        assert callback.json["data"]["flags"] & EPHEMERAL
        assert "a very long description" in content and "a short one" not in content
        assert "the limit is 5,000" in content
        await world.settle(bot)
    assert jobs_made(world) == [] and world.submits() == []


async def test_escaped_braces_are_sent_literally_without_a_preview(world: World) -> None:
    async with world.bot() as bot:
        interaction = await world.fake.invoke_slash("imagine", {"prompt": r"a sign saying \{open\}"})
        callback = await world.fake.wait_for_callback(interaction)
        assert callback.json["type"] == DEFERRED  # straight to work, as any prompt without braces
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
    [submit] = world.submits()
    assert submit.json["prompt"] == "a sign saying {open}"


async def test_bad_braces_are_refused_and_nothing_is_billed(world: World) -> None:
    async with world.bot() as bot:
        for prompt, words in (
            ("a {red, blue car", "never closed"),
            ("a red} car", "no `{` before it"),
            ("a {red,, blue} car", "empty choice"),
        ):
            _, data = await preview_of(world, prompt)
            assert words in data["content"], data["content"]
        await world.settle(bot)
    assert jobs_made(world) == [] and world.submits() == []
    assert all(counted == 0 for _, _, counted in usage_rows(world))


async def test_when_not_all_fit_the_summary_says_which_were_made_and_why_not(world: World) -> None:
    fake = world.fake
    async with world.bot(default_daily_quota=2) as bot:
        await bot.store.settings.update_policy(fake.guild_id, fake.owner_id, bot.clock.time(), max_running=10)
        preview, data = await preview_of(world, "a {cat, dog, fox} on a sofa")
        await press(world, preview, data, "confirm")
        for job_id in (1, 2):
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id)
        await world.settle(bot)
        summary = fake.messages[preview.original_message_id or 0]["content"]
    assert "Made 2 of 3 requests" in summary
    assert "❌ **3.** a fox on a sofa: You have used all 2 of today's images" in summary
    assert jobs_made(world) == ["a cat on a sofa", "a dog on a sofa"]
    assert sorted(usage_rows(world)) == [
        ("a cat on a sofa", "completed", 1),
        ("a dog on a sofa", "completed", 1),
        ("a fox on a sofa", "refused", 0),
    ]


async def test_the_preview_and_its_answers_read_in_chinese(world: World) -> None:
    async with world.bot() as bot:
        preview, data = await preview_of(world, "a {cat, dog} on a sofa", locale="zh-CN")
        assert "确认" in str(data["components"])
        assert "a cat on a sofa" in data["content"]
        assert not data["content"].isascii()
        _, answer = await press(world, preview, data, "cancel", locale="zh-CN")
        assert not answer["data"]["content"].isascii()
        _, refused = await preview_of(world, "a {cat, dog", locale="zh-CN")
        assert not refused["content"].isascii()
        await world.settle(bot)


async def test_a_prompt_without_braces_has_no_preview(world: World) -> None:
    async with world.bot() as bot:
        interaction = await world.fake.invoke_slash("imagine", {"prompt": r"C:\path, a, b"})
        assert (await world.fake.wait_for_callback(interaction)).json["type"] == DEFERRED
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
    [submit] = world.submits()
    assert submit.json["prompt"] == r"C:\path, a, b"  # backslashes untouched where there is no brace


async def test_prompts_over_the_running_limit_are_offered_again_once_it_passes(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await bot.store.settings.update_policy(fake.guild_id, fake.owner_id, bot.clock.time(), max_running=2)
        preview, data = await preview_of(world, "a {cat, dog, fox} on a sofa")
        await press(world, preview, data, "confirm")
        for job_id in (1, 2):
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id)
        await world.settle(bot)
        summary = fake.messages[preview.original_message_id or 0]
        assert "Made 2 of 3 requests" in summary["content"]
        assert "❌ **3.** a fox on a sofa: You already have 2 images in progress" in summary["content"]
        assert "press **Make it**" in summary["content"]
        # The two have finished: the third is made on request, numbered as in the preview.
        click, answer = await press(world, preview, summary, "more")
        assert answer["type"] == UPDATE
        await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=3)
        await world.settle(bot)
        summary = fake.messages[preview.original_message_id or 0]
        assert "✅ **3.** a fox on a sofa" in summary["content"] and not summary["components"]
        assert len(click.followup_ids) == 1  # its status message
    assert jobs_made(world) == ["a cat on a sofa", "a dog on a sofa", "a fox on a sofa"]
    assert sorted(r for r in usage_rows(world) if r[1] != "refused") == [
        ("a cat on a sofa", "completed", 1),
        ("a dog on a sofa", "completed", 1),
        ("a fox on a sofa", "completed", 1),
    ]


async def test_the_offer_of_the_rest_can_be_skipped_and_expires(world: World) -> None:
    fake = world.fake
    clock = ShiftedClock()
    world.sandbox.config.duration = 2.0
    async with world.bot(clock=clock) as bot:
        await bot.store.settings.update_policy(fake.guild_id, fake.owner_id, clock.time(), max_running=2)
        for action in ("drop", "more"):
            preview, data = await preview_of(world, "a {cat, dog, fox} on a sofa")
            await press(world, preview, data, "confirm")
            await wait_until_offered(world, preview)
            summary = fake.messages[preview.original_message_id or 0]
            if action == "more":
                clock.offset = 15 * 60 + 1
            _, answer = await press(world, preview, summary, action)
            content = answer["data"]["content"]
            assert "other prompts were not made" in content, content
            assert ("expired" in content) == (action == "more")
            await world.settle(bot)
    # Two made by each Confirm, the fox never.
    assert "a fox on a sofa" not in jobs_made(world) and len(jobs_made(world)) == 4


async def wait_until_offered(world: World, preview: FakeInteraction) -> None:
    def offered() -> bool:
        components = world.fake.messages[preview.original_message_id or 0].get("components") or []
        return any(":more:" in c["custom_id"] for row in components for c in row["components"])

    await wait_until(offered, "the offer of the rest")


async def test_personal_use_makes_each_prompt_through_the_interaction_only(world: World) -> None:
    """The app installed to the member's account, in a server without the bot: every message goes
    through the Confirm press's interaction, within Discord's follow-up limit for it."""
    fake = world.fake
    elsewhere = fake.add_guild("Somewhere Else", with_bot=False)
    async with world.bot() as bot:
        preview, data = await preview_of(world, "a {red, blue} fox", guild_id=elsewhere, user_install=True)
        click, _ = await press(world, preview, data, "confirm")
        jobs = [
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id) for job_id in (1, 2)
        ]
        await world.settle(bot)
    assert [j.prompt for j in jobs] == ["a red fox", "a blue fox"]
    assert all(j.delivery == "interaction" and j.guild_id is None for j in jobs)
    channel_posts = [r for r in fake.requests if r.method == "POST" and r.path.startswith("/channels/")]
    assert channel_posts == []  # the bot is not in that server
    # Two status messages and two images, all follow-ups of the one press: within Discord's five.
    assert click.followups_sent == 4


async def test_each_prompt_asks_for_the_count_and_the_total_is_within_the_limit(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await bot.store.settings.update_policy(fake.guild_id, fake.owner_id, bot.clock.time(), max_running=10)
        interaction = await fake.invoke_slash("imagine", {"prompt": "a {red, blue} fox", "count": 2})
        data = (await fake.wait_for_callback(interaction)).json["data"]
        assert "4 images (2 × 2)" in data["content"]
        click, _ = await press(world, interaction, data, "confirm")
        jobs = [
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id)
            for job_id in range(1, 5)
        ]
        await world.settle(bot)
        # Two requests of two images each: one status message per request, shared by its two jobs.
        assert [(j.prompt, j.request_size) for j in jobs] == [
            ("a red fox", 2),
            ("a red fox", 2),
            ("a blue fox", 2),
            ("a blue fox", 2),
        ]
        assert len({j.request for j in jobs}) == 2
        assert len(click.followup_ids) == 2
        assert {j.message_id for j in jobs} == set(click.followup_ids)
        # Above the limit: combinations times count, both numbers named.
        refused = await fake.invoke_slash("imagine", {"prompt": "a {red, blue} fox", "count": 3})
        content = (await fake.wait_for_callback(refused)).json["data"]["content"]
        assert "2 prompts × 3 images = 6 images" in content and "at most 4 images" in content
        # The server's own per-request limit is the one that counts.
        await bot.store.settings.update_policy(fake.guild_id, fake.owner_id, bot.clock.time(), count_limit=2)
        _, data = await preview_of(world, "a {red, blue, green} fox")
        assert "3 prompts × 1 image = 3 images" in data["content"] and "at most 2 images" in data["content"]
        await world.settle(bot)
    assert len(world.submits()) == 4


async def test_a_double_press_of_confirm_makes_the_requests_once(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        preview, data = await preview_of(world, "a {cat, dog} on a sofa")
        message_id = preview.original_message_id or 0
        clicks = await asyncio.gather(
            *(fake.invoke_component(button(data, "confirm"), message_id) for _ in range(2))
        )
        answers = [(await fake.wait_for_callback(c)).json["data"]["content"] for c in clicks]
        for job_id in (1, 2):
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id)
        await world.settle(bot)
    assert sum("expired" in a for a in answers) == 1  # the second press found nothing left to make
    assert jobs_made(world) == ["a cat on a sofa", "a dog on a sofa"]
    assert len(world.submits()) == 2


async def test_confirm_answers_within_discords_deadline_while_the_database_is_locked(
    sandbox: Sandbox, db_path: Path
) -> None:
    """The press is answered before any admission (Discord allows 3 seconds); the requests follow
    once the database is free again."""
    async with running_fake(callback_deadline=3.0) as fake:
        world = World(fake, sandbox, db_path)
        async with world.bot() as bot:
            preview, data = await preview_of(world, "a {cat, dog} on a sofa")
            lock = sqlite3.connect(db_path, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                click = await fake.invoke_component(button(data, "confirm"), preview.original_message_id or 0)
                answer = await fake.wait_for_callback(click, timeout=3.0)
                assert answer.json["type"] == UPDATE and "Making 2 requests" in answer.json["data"]["content"]
                # Time passing is what is tested: past Discord's deadline, within SQLite's busy timeout.
                await asyncio.sleep(3.5)
                assert world.submits() == []
            finally:
                lock.rollback()
                lock.close()
            for job_id in (1, 2):
                await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id, timeout=15.0)
            await world.settle(bot)
            summary = fake.messages[preview.original_message_id or 0]["content"]
    assert "2 requests were made" in summary
    assert jobs_made(world) == ["a cat on a sofa", "a dog on a sofa"]
