"""Buttons that outlive the bot: Reroll, Edit, Delete, Cancel, /queue, /history with Post again, ETA."""

from __future__ import annotations

from typing import Any

import yarl

from bot.core.models import JobStatus
from bot.core.policy.quotas import Member
from bot.discord.client import ImagineBot
from tests.bot_harness import EPHEMERAL, World, wait_for_job

DEFERRED = 5
UPDATE_MESSAGE = 7
MODAL = 9


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]


async def roomy(bot: ImagineBot, world: World) -> None:
    """Lift the default limits so a test can run many jobs."""
    await bot.store.settings.update_policy(
        world.fake.guild_id, world.fake.owner_id, bot.clock.time(), max_running=20
    )


async def deliver_one(world: World, bot: ImagineBot, job_id: int, **options: Any) -> dict[str, Any]:
    """Run /imagine to delivery; returns the posted image message as the fake stores it."""
    await world.fake.invoke_slash("imagine", {"prompt": f"picture {job_id}", **options})
    job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=job_id)
    assert job.result_message_id is not None
    return world.fake.messages[job.result_message_id]


async def test_result_message_has_buttons_that_reroll_after_a_restart(world: World) -> None:
    fake = world.fake
    reference = fake.make_attachment("ref.png", "image/png")
    async with world.bot() as bot:
        await fake.invoke_slash(
            "imagine", {"prompt": "a fox", "aspect_ratio": "3:2"}, attachments={"image1": reference}
        )
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
    assert job.result_message_id is not None
    message = fake.messages[job.result_message_id]
    assert custom_ids(message) == [
        f"imagine:reroll:{job.id}",
        f"imagine:edit:{job.id}",
        f"imagine:delete:{job.id}",
        f"imagine:animate:{job.id}:1",
    ]
    fake.expire_url(reference["url"])  # a day later the signed link no longer works

    async with world.bot() as bot:  # a new process: nothing in memory
        click = await fake.invoke_component(
            f"imagine:reroll:{job.id}", job.result_message_id, user_id=fake.user_id
        )
        assert (await fake.wait_for_callback(click)).json["type"] == DEFERRED
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=2)
    first, second = world.submits()
    assert second.json["prompt"] == "a fox" and second.json["aspectRatio"] == "3:2"
    [old_ref], [new_ref] = first.json["images"], second.json["images"]
    assert yarl.URL(new_ref).path == yarl.URL(old_ref).path  # the same attachment...
    assert new_ref != old_ref  # ...with a freshly signed link, not the expired one


async def test_edit_uses_the_finished_image_as_reference(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        message = await deliver_one(world, bot, 1, aspect_ratio="1:1")
    original_url = message["attachments"][0]["url"]
    async with world.bot() as bot:  # after a restart
        click = await fake.invoke_component("imagine:edit:1", int(message["id"]))
        modal = (await fake.wait_for_callback(click)).json
        assert modal["type"] == MODAL
        inputs = [c for row in modal["data"]["components"] for c in row["components"]]
        assert inputs[0]["value"] == "picture 1" and inputs[1]["value"] == "1:1"
        fake.expire_url(original_url)
        submitted = await fake.submit_modal(
            modal["data"]["custom_id"],
            {inputs[0]["custom_id"]: "picture 1, but at night", inputs[1]["custom_id"]: "16:9"},
        )
        assert (await fake.wait_for_callback(submitted)).json["type"] == DEFERRED
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=2)
    edit = world.submits()[1].json
    assert edit["prompt"] == "picture 1, but at night" and edit["aspectRatio"] == "16:9"
    [reference] = edit["images"]
    assert yarl.URL(reference).path == yarl.URL(original_url).path
    assert reference != original_url  # refreshed by fetching the message


async def test_cancel_by_requester_and_refusal_for_a_stranger(world: World) -> None:
    fake = world.fake
    world.sandbox.force_next(never_finish=True)
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "too slow"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        status_id = interaction.original_message_id or 0
        await fake.wait_for_message(
            lambda m: int(m["id"]) == status_id and "imagine:cancel:1" in custom_ids(m)
        )

        someone = fake.add_member(fake.guild_id, username="someone-else")
        stranger = await fake.invoke_component("imagine:cancel:1", status_id, user_id=someone)
        answer = (await fake.wait_for_callback(stranger)).json
        assert answer["data"]["flags"] & EPHEMERAL and "not your request" in answer["data"]["content"]
        assert (await bot.store.jobs.get(1)).status is JobStatus.RUNNING  # type: ignore[union-attr]

        mine = await fake.invoke_component("imagine:cancel:1", status_id, user_id=fake.user_id)
        answer = (await fake.wait_for_callback(mine)).json
        assert answer["type"] == UPDATE_MESSAGE and "Cancelled" in answer["data"]["content"]
        assert answer["data"]["components"] == []
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.CANCELLED)
        assert job.cancelled_by == fake.user_id
        summary = await bot.store.usage.summary(Member(fake.guild_id, fake.user_id), bot.clock.time(), 10)
        assert summary.used_today == 1 and summary.running == 0  # the provider may bill it: it counts
        await world.settle(bot)  # a post of the cancelled job would be under way or made by now
    assert world.bot_posts() == []


async def test_cancel_after_a_restart(world: World) -> None:
    fake = world.fake
    world.sandbox.force_next(never_finish=True)
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "left running"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
    async with world.bot() as bot:
        click = await fake.invoke_component("imagine:cancel:1", interaction.original_message_id or 0)
        assert (await fake.wait_for_callback(click)).json["type"] == UPDATE_MESSAGE
        await wait_for_job(bot, lambda j: j.status is JobStatus.CANCELLED)


async def test_moderator_cancel_is_refunded(world: World) -> None:
    fake = world.fake
    world.sandbox.force_next(never_finish=True)
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "spam"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        click = await fake.invoke_component(
            "imagine:cancel:1", interaction.original_message_id or 0, user_id=fake.moderator_id
        )
        assert (await fake.wait_for_callback(click)).json["type"] == UPDATE_MESSAGE
        await wait_for_job(bot, lambda j: j.status is JobStatus.CANCELLED)
        summary = await bot.store.usage.summary(Member(fake.guild_id, fake.user_id), bot.clock.time(), 10)
        assert summary.used_today == 0


async def test_queue_lists_running_jobs_with_cancel_buttons(world: World) -> None:
    fake = world.fake
    world.sandbox.force_next(never_finish=True)
    world.sandbox.force_next(never_finish=True)
    async with world.bot() as bot:
        await roomy(bot, world)
        await fake.invoke_slash("imagine", {"prompt": "first slow one"})
        # Admitted before the second is asked for, so the two jobs' ids follow the order of the asks.
        await wait_for_job(bot, lambda j: j.prompt == "first slow one", job_id=1)
        await fake.invoke_slash("imagine", {"prompt": "second slow one"}, user_id=fake.moderator_id)
        for job_id in (1, 2):
            await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING, job_id=job_id)

        mine = (await fake.wait_for_callback(await fake.invoke_slash("queue"))).json["data"]
        assert mine["flags"] & EPHEMERAL
        assert "first slow one" in mine["content"] and "second slow one" not in mine["content"]
        assert custom_ids(mine) == ["imagine:cancel:1"]

        everyone = await fake.invoke_slash("queue", {"all": True}, user_id=fake.moderator_id)
        data = (await fake.wait_for_callback(everyone)).json["data"]
        assert custom_ids(data) == ["imagine:cancel:1", "imagine:cancel:2"]

        refused = (await fake.wait_for_callback(await fake.invoke_slash("queue", {"all": True}))).json["data"]
        assert "Only moderators" in refused["content"]

        # Cancelling from the /queue message marks the job's own status message too.
        queue_message = max(
            int(m["id"]) for m in fake.messages.values() if "imagine:cancel:1" in custom_ids(m)
        )
        click = await fake.invoke_component("imagine:cancel:1", queue_message)
        assert "Cancelled request #1" in (await fake.wait_for_callback(click)).json["data"]["content"]
        await wait_for_job(bot, lambda j: j.status is JobStatus.CANCELLED)


async def test_history_pages_and_post_again_after_the_link_expired(world: World) -> None:
    fake = world.fake
    world.sandbox.config.duration = 0.05
    async with world.bot(default_daily_quota=50) as bot:
        await roomy(bot, world)
        posted = [await deliver_one(world, bot, job_id) for job_id in range(1, 8)]

        first = (await fake.wait_for_callback(await fake.invoke_slash("history"))).json["data"]
        assert first["flags"] & EPHEMERAL
        assert "page 1 of 2 (7 requests in all)" in first["content"]
        assert "picture 7" in first["content"] and "picture 2" not in first["content"]
        ids = custom_ids(first)
        assert ids[:5] == [f"imagine:repost:{n}" for n in (7, 6, 5, 4, 3)]
        assert ids[5].startswith(f"imagine:history:{fake.user_id}:1:")

        history_message = max(int(m["id"]) for m in fake.messages.values() if ids[5] in custom_ids(m))
        older = await fake.invoke_component(ids[5], history_message)
        page_two = (await fake.wait_for_callback(older)).json
        assert page_two["type"] == UPDATE_MESSAGE and "page 2 of 2" in page_two["data"]["content"]
        assert "picture 1" in page_two["data"]["content"]
        original = posted[0]
        fake.expire_url(original["attachments"][0]["url"])
        again = await fake.invoke_component("imagine:repost:1", history_message)
        await fake.wait_for_callback(again)
        repost = await fake.wait_for_request(
            lambda r: r.method == "POST" and f"/{again.token}" in r.path and bool(r.files)
        )
        # Pages are keyset-paged: the buttons carry the job id the next page starts beyond.
        assert ids[5] == f"imagine:history:{fake.user_id}:1:next:3"
        [newer_id] = [i for i in custom_ids(page_two["data"]) if i.startswith("imagine:history:")]
        assert newer_id == f"imagine:history:{fake.user_id}:0:prev:2"
        newer = (await fake.wait_for_callback(await fake.invoke_component(newer_id, history_message))).json
        assert "page 1 of 2" in newer["data"]["content"] and "picture 7" in newer["data"]["content"]
        # A button from before keyset paging (no cursor) still answers, with the newest page. Such a
        # message was posted by the older version: its stored button has the old id.
        legacy = f"imagine:history:{fake.user_id}:1:next"
        button = {"type": 2, "style": 2, "label": "Older ▶", "custom_id": legacy}
        fake.messages[history_message]["components"] = [{"type": 1, "components": [button]}]
        old_button = (await fake.wait_for_callback(await fake.invoke_component(legacy, history_message))).json
        assert "page 1 of 2" in old_button["data"]["content"] and "picture 7" in old_button["data"]["content"]

    assert repost.files[0].data == fake.attachment_bytes(original["attachments"][0])
    assert custom_ids(repost.json)[:1] == ["imagine:reroll:1"]


async def test_history_of_another_member_is_for_moderators(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await deliver_one(world, bot, 1)
        peek = await fake.invoke_slash("history", {"member": fake.user_id}, user_id=fake.moderator_id)
        assert "picture 1" in (await fake.wait_for_callback(peek)).json["data"]["content"]
        nosy = await fake.invoke_slash("history", {"member": fake.moderator_id})
        assert "Only moderators" in (await fake.wait_for_callback(nosy)).json["data"]["content"]


async def test_delete_by_requester_keeps_the_usage_row(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        message = await deliver_one(world, bot, 1)
        someone = fake.add_member(fake.guild_id, username="someone-else")
        stranger = await fake.invoke_component("imagine:delete:1", int(message["id"]), user_id=someone)
        assert "not your request" in (await fake.wait_for_callback(stranger)).json["data"]["content"]
        assert int(message["id"]) in fake.messages

        click = await fake.invoke_component("imagine:delete:1", int(message["id"]))
        await fake.wait_for_request(
            lambda r: r.method == "DELETE" and r.path.endswith(f"/messages/{message['id']}")
        )
        job = await wait_for_job(bot, lambda j: j.result_deleted_at is not None)
        summary = await bot.store.usage.summary(Member(fake.guild_id, fake.user_id), bot.clock.time(), 10)
        assert summary.used_today == 1
        assert job.status is JobStatus.DELIVERED and click is not None


async def test_a_click_on_a_job_that_no_longer_exists_is_answered(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        message = await deliver_one(world, bot, 1)
    # The operator starts over with a fresh database: the message and its buttons remain in Discord.
    async with world.bot(database_path=world.db_path.with_name("fresh.db")):
        click = await fake.invoke_component("imagine:reroll:1", int(message["id"]))
        answer = (await fake.wait_for_callback(click)).json["data"]
    assert answer["flags"] & EPHEMERAL and "no longer exists" in answer["content"]
    assert len(world.submits()) == 1


async def test_eta_appears_only_after_enough_finished_jobs(world: World) -> None:
    fake = world.fake
    world.sandbox.config.duration = 0.3

    def eta_shown(job_id: int) -> bool:
        token = fake.interactions[sorted(fake.interactions)[job_id - 1]].token
        return any(
            "usually about" in str(r.json.get("content", ""))
            for r in fake.requests
            if r.method == "PATCH" and f"/{token}/" in r.path and isinstance(r.json, dict)
        )

    async with world.bot(default_daily_quota=50) as bot:
        await roomy(bot, world)
        for job_id in range(1, 7):
            await deliver_one(world, bot, job_id)
    assert not any(eta_shown(n) for n in range(1, 6))  # fewer than five finished jobs: no guess
    assert eta_shown(6)
