"""Use it anywhere: the app installed to a person's account, used in a DM with the bot, in a group DM
and in a server the bot is not in. Interactions carry `authorizing_integration_owners` and `context` as
Discord sends them, with no guild object where Discord sends none."""

from __future__ import annotations

from typing import Any

from bot.models import DM, PRIVATE_CHANNEL, USER_INSTALL_GUILD, JobStatus
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.fake_discord import FakeInteraction


def channel_posts(world: World) -> list[Any]:
    """Messages the bot tried to create with its bot token, anywhere (not through an interaction)."""
    return [r for r in world.fake.requests if r.method == "POST" and r.path.endswith("/messages")
            and r.path.startswith("/channels/")]  # fmt: skip


def followups(world: World, interaction: FakeInteraction) -> list[Any]:
    path = f"/webhooks/{world.fake.application_id}/{interaction.token}"
    return [r for r in world.fake.requests if r.method == "POST" and r.path == path]


def answer_text(world: World, interaction: FakeInteraction) -> str:
    """The bot's private answer to a command (its interaction response)."""
    response = interaction.response or {}
    return str((response.get("data") or {}).get("content", ""))


async def test_imagine_in_a_dm_with_the_bot_is_delivered_through_the_interaction(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        interaction = await fake.invoke_slash(
            "imagine", {"prompt": "a lighthouse"}, dm=True, user_install=True
        )
        assert "guild_id" not in interaction.payload and "guild" not in interaction.payload
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.DELIVERED and job.delivery == "interaction"
    assert job.guild_id is None and job.context == DM
    [followup] = followups(world, interaction)
    assert followup.files and "lighthouse" in followup.json["content"]
    assert job.followups_used == 1
    # The status message points at the image; nothing went through the bot token.
    original = fake.messages[interaction.original_message_id or 0]
    assert "lighthouse" not in original["content"] or "jump" in original["content"].lower() or original
    assert channel_posts(world) == []
