"""Use it anywhere: the app installed to a person's account, used in a DM with the bot, in a group DM
and in a server the bot is not in. Interactions carry `authorizing_integration_owners` and `context` as
Discord sends them, with no guild object where Discord sends none (a partial one in a server the bot is
not in), and the fake refuses the bot token there as Discord does."""

from __future__ import annotations

import time
from typing import Any

from bot.adapters.store import jobs_repo
from bot.core.models import DM, PRIVATE_CHANNEL, USER_INSTALL_GUILD, JobStatus
from testing.fake_discord import FakeInteraction
from tests.bot_harness import EPHEMERAL, World, wait_for_job


def bot_token_posts(world: World) -> list[Any]:
    """Messages the bot tried to create with its bot token in any channel (not through an interaction)."""
    return [
        r for r in world.fake.requests if r.method == "POST" and r.path.startswith("/channels/")
        and r.path.endswith("/messages")
    ]  # fmt: skip


def followups(world: World, interaction: FakeInteraction) -> list[Any]:
    path = f"/webhooks/{world.fake.application_id}/{interaction.token}"
    return [r for r in world.fake.requests if r.method == "POST" and r.path == path]


async def private_answer(world: World, interaction: FakeInteraction) -> str:
    """The bot's private answer (its interaction response) to a command."""
    await world.fake.wait_for_callback(interaction)
    response = interaction.response or {}
    data = response.get("data") or {}
    assert data.get("flags", 0) & EPHEMERAL, response
    return str(data.get("content", ""))


def usage_rows(world: World) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(world.db_path) as conn:
        return conn.execute("SELECT guild_id, context, outcome, reason FROM usage ORDER BY id").fetchall()


async def test_imagine_in_a_dm_with_the_bot_is_delivered_through_the_interaction(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        interaction = await fake.invoke_slash(
            "imagine", {"prompt": "a lighthouse"}, dm=True, user_install=True
        )
        assert "guild_id" not in interaction.payload and "guild" not in interaction.payload
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.DELIVERED and job.delivery == "interaction"
    assert (job.guild_id, job.context, job.followups_used) == (None, DM, 1)
    [followup] = followups(world, interaction)
    assert followup.files and "lighthouse" in followup.json["content"]
    # The status message points at the image (a follow-up, so the member is notified).
    original = fake.messages[interaction.original_message_id or 0]
    assert str(interaction.followup_ids[0]) in original["content"]
    assert bot_token_posts(world) == []
    assert usage_rows(world) == [(None, DM, "completed", None)]


async def test_user_install_in_a_server_without_the_bot_never_uses_the_channel(world: World) -> None:
    fake = world.fake
    elsewhere = fake.add_guild("Somewhere Else", with_bot=False)
    async with world.bot() as bot:
        assert bot.get_guild(elsewhere) is None  # the bot is not a member there
        interaction = await fake.invoke_slash(
            "imagine", {"prompt": "a red fox"}, guild_id=elsewhere, user_install=True
        )
        assert interaction.payload["authorizing_integration_owners"] == {"1": str(fake.user_id)}
        assert interaction.payload["guild"] == {"id": str(elsewhere), "locale": "en-US", "features": []}
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
        # /queue and /history there: personal jobs, the member's own.
        history = await fake.invoke_slash("history", {}, guild_id=elsewhere, user_install=True)
        listed = await private_answer(world, history)
    assert (job.status, job.delivery, job.context) == (JobStatus.DELIVERED, "interaction", USER_INSTALL_GUILD)
    assert (job.guild_id, job.place_guild_id) == (None, elsewhere)
    assert bot_token_posts(world) == []  # the fake would answer 403 Missing Access
    assert len(followups(world, interaction)) == 1
    assert "red fox" in listed
    assert usage_rows(world) == [(None, USER_INSTALL_GUILD, "completed", None)]


async def test_group_dm_queue_and_usage(world: World) -> None:
    fake = world.fake
    group = fake.add_group_dm([fake.user_id, fake.moderator_id])
    world.sandbox.config.duration = 1.0
    async with world.bot(default_personal_quota=3) as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "three cats"}, group_dm=group)
        assert interaction.payload["context"] == 2 and "guild_id" not in interaction.payload
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        queue = await fake.invoke_slash("queue", {}, group_dm=group)
        in_progress = await private_answer(world, queue)
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
        usage = await fake.invoke_slash("usage", {}, group_dm=group)
        summary = await private_answer(world, usage)
    assert "three cats" in in_progress
    assert (job.delivery, job.context) == ("interaction", PRIVATE_CHANNEL)
    assert bot_token_posts(world) == []
    assert "personal use" in summary and "**1** of 3" in summary


async def test_the_personal_quota_spans_every_place_and_servers_keep_their_own(world: World) -> None:
    fake = world.fake
    elsewhere = fake.add_guild("Somewhere Else", with_bot=False)
    group = fake.add_group_dm([fake.user_id, fake.owner_id])
    async with world.bot(default_personal_quota=2) as bot:
        await fake.invoke_slash("imagine", {"prompt": "one"}, dm=True, user_install=True)
        await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=1)
        await fake.invoke_slash("imagine", {"prompt": "two"}, group_dm=group)
        await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=2)
        third = await fake.invoke_slash("imagine", {"prompt": "three"}, guild_id=elsewhere, user_install=True)
        refusal = await private_answer(world, third)
        # In the server that installed the bot, its own rules and quota apply as before.
        await fake.invoke_slash("imagine", {"prompt": "in the server"})
        server_job = await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=3)
    assert "all 2 of today's personal images" in refusal
    assert server_job.guild_id == fake.guild_id and server_job.context == "guild"
    assert usage_rows(world) == [
        (None, DM, "completed", None),
        (None, PRIVATE_CHANNEL, "completed", None),
        (None, USER_INSTALL_GUILD, "refused", "quota"),
        (fake.guild_id, "guild", "completed", None),
    ]


async def test_a_person_banned_from_personal_use_is_told_privately(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await bot.store.personal.ban(fake.user_id, reason="spamming", expires_at=None, now=time.time())
        interaction = await fake.invoke_slash("imagine", {"prompt": "anything"}, dm=True, user_install=True)
        text = await private_answer(world, interaction)
        usage = await fake.invoke_slash("usage", {}, dm=True, user_install=True)
        summary = await private_answer(world, usage)
        # The ban is personal: in the server that installed the bot, the member still may.
        await fake.invoke_slash("imagine", {"prompt": "in the server"})
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert "blocked your personal use" in text and "spamming" in text
    assert "blocked your personal use" in summary
    assert usage_rows(world)[0] == (None, DM, "refused", "banned")
    assert world.submits() and len(world.submits()) == 1


async def test_no_follow_up_past_discords_limit_the_image_goes_into_the_status_message(world: World) -> None:
    fake = world.fake
    world.sandbox.config.duration = 0.6
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "limits"}, dm=True, user_install=True)
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        await bot.store.jobs.set_followups(1, 5)  # the interaction has used all its follow-ups
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.delivery == "interaction" and job.followups_used == 5
    assert followups(world, interaction) == []
    original = fake.messages[interaction.original_message_id or 0]
    assert original["attachments"] and "limits" in original["content"]


async def test_after_the_token_expired_the_image_comes_by_dm_saying_so(world: World) -> None:
    fake = world.fake
    group = fake.add_group_dm([fake.user_id, fake.moderator_id])
    world.sandbox.config.duration = 0.6
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "late owl"}, group_dm=group)
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        fake.expire_interaction(interaction)
        await bot.store.backend.run(
            jobs_repo.update_job, 1, {"token_expires_at": 0.0}
        )  # fifteen minutes pass
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.delivery == "dm"
    dm = fake.dm_channel(fake.user_id)
    [post] = [r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{dm}/messages"]
    assert post.files
    assert post.json["content"].startswith(
        "Your image from a group DM is ready; the original message could no longer be edited"
    )
    assert not any(r.path == f"/channels/{group}/messages" for r in fake.requests)


async def test_reroll_under_a_personal_image_is_personal_use_too(world: World) -> None:
    fake = world.fake
    elsewhere = fake.add_guild("Somewhere Else", with_bot=False)
    async with world.bot(default_personal_quota=2) as bot:
        interaction = await fake.invoke_slash(
            "imagine", {"prompt": "a kite"}, guild_id=elsewhere, user_install=True
        )
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
        [image_message] = interaction.followup_ids
        click = await fake.invoke_component("imagine:reroll:1", image_message)
        assert click.payload["authorizing_integration_owners"] == {"1": str(fake.user_id)}
        second = await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=2)
        again = await fake.invoke_component("imagine:reroll:1", image_message)
        refusal = await private_answer(world, again)
    assert (second.context, second.guild_id, second.prompt) == (USER_INSTALL_GUILD, None, "a kite")
    assert second.delivery == "interaction" and len(followups(world, click)) == 1
    assert "all 2 of today's personal images" in refusal
    assert bot_token_posts(world) == []


async def test_commands_are_synced_for_both_installs_and_admin_stays_in_servers(world: World) -> None:
    async with world.bot():
        pass
    synced = {c["name"]: c for c in world.fake.commands[world.fake.guild_id]}
    for name in ("imagine", "queue", "history", "usage"):
        assert (synced[name]["integration_types"], synced[name]["contexts"]) == ([0, 1], [0, 1, 2]), name
    assert (synced["imagine-admin"]["integration_types"], synced["imagine-admin"]["contexts"]) == ([0], [0])
