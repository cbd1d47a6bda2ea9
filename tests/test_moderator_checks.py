"""One definition of "moderator" for every command and button (bot/discord/checks.py), through the fake
Discord: the owner (no role at all) and a member with only Manage Messages act on other members' jobs;
a plain member cannot; /imagine-admin stays for the owner and Manage Server."""

from __future__ import annotations

from typing import Any

from bot.core.models import JobStatus
from bot.core.policy.quotas import Member
from bot.discord.client import ImagineBot
from testing.fake_discord import MANAGE_MESSAGES, FakeInteraction
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.test_living_messages import UPDATE_MESSAGE, custom_ids, deliver_one, roomy


async def answer(world: World, interaction: FakeInteraction) -> dict[str, Any]:
    return (await world.fake.wait_for_callback(interaction)).json  # type: ignore[no-any-return]


async def slow_job(world: World, bot: ImagineBot, prompt: str, job_id: int) -> int:
    """A job of the plain member that keeps running; returns its status message id."""
    world.sandbox.force_next(never_finish=True)
    interaction = await world.fake.invoke_slash("imagine", {"prompt": prompt})
    await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING, job_id=job_id)
    status_id = interaction.original_message_id or 0
    await world.fake.wait_for_message(
        lambda m: int(m["id"]) == status_id and f"imagine:cancel:{job_id}" in custom_ids(m)
    )
    return status_id


async def test_the_owner_without_any_role_is_a_moderator_everywhere(world: World) -> None:
    fake = world.fake
    assert fake.guilds[fake.guild_id].members[fake.owner_id].roles == []
    async with world.bot() as bot:
        await roomy(bot, world)
        status_id = await slow_job(world, bot, "owner stops this", 1)
        everyone = await answer(world, await fake.invoke_slash("queue", {"all": True}, user_id=fake.owner_id))
        assert custom_ids(everyone["data"]) == ["imagine:cancel:1"]
        usage = await fake.invoke_slash("usage", {"member": fake.user_id}, user_id=fake.owner_id)
        assert "Only moderators" not in (await answer(world, usage))["data"]["content"]

        click = await fake.invoke_component("imagine:cancel:1", status_id, user_id=fake.owner_id)
        assert (await answer(world, click))["type"] == UPDATE_MESSAGE
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.CANCELLED)
        assert job.cancelled_by == fake.owner_id
        summary = await bot.store.usage.summary(Member(fake.guild_id, fake.user_id), bot.clock.time(), 10)
        assert summary.used_today == 0  # a moderator's cancel never counts against the member

        image = await deliver_one(world, bot, 2)
        history = await fake.invoke_slash("history", {"member": fake.user_id}, user_id=fake.owner_id)
        assert "picture 2" in (await answer(world, history))["data"]["content"]
        delete = await fake.invoke_component("imagine:delete:2", int(image["id"]), user_id=fake.owner_id)
        await fake.wait_for_callback(delete)
        await wait_for_job(bot, lambda j: j.result_deleted_at is not None, job_id=2)
        settings = await fake.invoke_slash("imagine-admin", {}, subcommand="settings", user_id=fake.owner_id)
        assert "Image bot settings" in (await answer(world, settings))["data"]["content"]


async def test_manage_messages_alone_moderates_jobs_but_not_the_server_settings(world: World) -> None:
    fake = world.fake
    helper_role = fake.add_role(fake.guild_id, "Helper", MANAGE_MESSAGES)
    helper = fake.add_member(fake.guild_id, username="helper-hal", roles=[helper_role])
    async with world.bot() as bot:
        status_id = await slow_job(world, bot, "helper stops this", 1)
        everyone = await answer(world, await fake.invoke_slash("queue", {"all": True}, user_id=helper))
        assert custom_ids(everyone["data"]) == ["imagine:cancel:1"]

        # Cancelled from the /queue list: the runner has the sink mark the job's own status message.
        listing = max(int(m["id"]) for m in fake.messages.values() if "imagine:cancel:1" in custom_ids(m))
        assert listing != status_id
        click = await fake.invoke_component("imagine:cancel:1", listing, user_id=helper)
        assert "Cancelled request #1" in (await answer(world, click))["data"]["content"]
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.CANCELLED)
        assert job.cancelled_by == helper and job.delivery == "cancelled"
        status = await fake.wait_for_message(
            lambda m: int(m["id"]) == status_id and f"Cancelled** by <@{helper}>" in m["content"]
        )
        assert custom_ids(status) == []

        admin = await fake.invoke_slash("imagine-admin", {}, subcommand="settings", user_id=helper)
        refused = (await answer(world, admin))["data"]
        assert refused["flags"] & EPHEMERAL and "Manage Server" in refused["content"]


async def test_a_plain_member_cannot_act_on_another_members_job(world: World) -> None:
    fake = world.fake
    other = fake.add_member(fake.guild_id, username="other-olga")
    async with world.bot() as bot:
        await roomy(bot, world)
        status_id = await slow_job(world, bot, "not yours to stop", 1)
        click = await fake.invoke_component("imagine:cancel:1", status_id, user_id=other)
        refused = (await answer(world, click))["data"]
        assert refused["flags"] & EPHEMERAL and "not your request" in refused["content"]
        everyone = await answer(world, await fake.invoke_slash("queue", {"all": True}, user_id=other))
        assert "Only moderators" in everyone["data"]["content"]
        assert (await bot.store.jobs.get(1)).status is JobStatus.RUNNING  # type: ignore[union-attr]

        image = await deliver_one(world, bot, 2)
        delete = await fake.invoke_component("imagine:delete:2", int(image["id"]), user_id=other)
        assert "not your request" in (await answer(world, delete))["data"]["content"]
        assert int(image["id"]) in fake.messages
        job = await bot.store.jobs.get(2)
        assert job is not None and job.result_deleted_at is None
