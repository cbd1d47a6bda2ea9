"""The buttons under a request of several images, after a restart (nothing in memory): V1..VN, U1..UN,
the "Image N →" menu (Edit, Use as reference) and the request's own row; within five rows of five."""

from __future__ import annotations

import time
from typing import Any

import yarl

from bot.core.models import JobStatus
from bot.core.usage_records import EXPORT_COLUMNS
from testing.mp4_boxes import read_mp4
from tests.bot_harness import World, wait_for_job

MODAL = 9
DEFERRED = 5


def rows_of(message: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [row["components"] for row in message["components"]]


async def ask_three(world: World) -> list[Any]:
    fake = world.fake
    async with world.bot() as bot:
        await bot.store.settings.update_policy(fake.guild_id, fake.owner_id, time.time(), max_running=20)
        asked = await fake.invoke_slash(
            "imagine", {"prompt": "three cats", "aspect_ratio": "1:1", "count": 3}
        )
        await fake.wait_for_callback(asked)
        jobs = [
            await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, n, timeout=30)
            for n in (1, 2, 3)
        ]
        await world.settle(bot)
    return jobs


async def test_the_request_message_has_numbered_buttons_per_image_and_a_row_for_the_request(
    world: World,
) -> None:
    jobs = await ask_three(world)
    message = world.fake.messages[jobs[0].result_message_id or 0]
    rows = rows_of(message)
    assert len(rows) <= 5 and all(len(row) <= 5 for row in rows)
    assert [(c["label"], c["custom_id"]) for c in rows[0]] == [
        (f"V{n}", f"imagine:vary:{n}") for n in (1, 2, 3)
    ]
    assert [(c["label"], c["custom_id"]) for c in rows[1]] == [
        (f"U{n}", f"imagine:full:{n}") for n in (1, 2, 3)
    ]
    [menu] = rows[2]
    assert menu["custom_id"] == "imagine:image:1"
    assert [o["value"] for o in menu["options"]] == [
        f"{a}:{n}" for n in (1, 2, 3) for a in ("edit", "animate", "ref")
    ]
    assert menu["options"][3]["label"] == "Image 2 → Edit"
    assert menu["options"][4]["label"] == "Image 2 → Animate"
    assert [c["custom_id"] for c in rows[3]] == [
        "imagine:reroll:1",
        "imagine:delete:1",
    ]  # no Cancel: all done


async def test_full_size_posts_that_image_alone_with_its_own_buttons(world: World) -> None:
    fake = world.fake
    jobs = await ask_three(world)
    message_id = jobs[0].result_message_id or 0
    async with world.bot() as bot:  # a new process: the buttons need nothing in memory
        click = await fake.invoke_component("imagine:full:2", message_id)
        assert (await fake.wait_for_callback(click)).json["type"] == DEFERRED
        await world.settle(bot)
    reply = fake.messages[click.original_message_id or 0]
    [(name, data)] = fake.message_files(int(reply["id"]))
    assert name == "imagine-2-1.png" and data == dict(fake.message_files(message_id))["imagine-2-1.png"]
    assert "Image 2" in reply["content"]
    ids = [c["custom_id"] for row in rows_of(reply) for c in row]
    assert ids == ["imagine:vary:2", "imagine:edit:2", "imagine:animate:2:1", "imagine:delete:2"]


async def test_the_menu_edits_an_image_with_the_dialog_prefilled_and_that_image_as_reference(
    world: World,
) -> None:
    fake = world.fake
    jobs = await ask_three(world)
    message_id = jobs[0].result_message_id or 0
    image_3 = next(a for a in fake.message_attachments(message_id) if a["filename"] == "imagine-3-1.png")
    async with world.bot() as bot:
        click = await fake.invoke_component(
            "imagine:image:1", message_id, component_type=3, values=["edit:3"]
        )
        modal = (await fake.wait_for_callback(click)).json
        assert modal["type"] == MODAL
        inputs = [c for row in modal["data"]["components"] for c in row["components"]]
        assert inputs[0]["value"] == "three cats" and inputs[1]["value"] == "1:1"
        submitted = await fake.submit_modal(
            modal["data"]["custom_id"],
            {inputs[0]["custom_id"]: "three cats, at night", inputs[1]["custom_id"]: ""},
        )
        assert (await fake.wait_for_callback(submitted)).json["type"] == DEFERRED
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=4, timeout=30)
        await world.settle(bot)
    edit = world.submits()[-1].json
    assert edit["prompt"] == "three cats, at night"
    [reference] = edit["images"]
    assert yarl.URL(reference).path == yarl.URL(image_3["url"]).path


async def test_the_menu_animates_one_image_of_the_request(world: World) -> None:
    """ "Image 2 → Animate": the Animate dialog, pre-filled with the prompt; the video is made from image 2
    (the request's job 2) and posted as a playable MP4 of the chosen length."""
    fake = world.fake
    jobs = await ask_three(world)
    message_id = jobs[0].result_message_id or 0
    image_2 = next(a for a in fake.message_attachments(message_id) if a["filename"] == "imagine-2-1.png")
    async with world.bot() as bot:  # a new process: the menu needs nothing in memory
        click = await fake.invoke_component(
            "imagine:image:1", message_id, component_type=3, values=["animate:2"]
        )
        modal = (await fake.wait_for_callback(click)).json
        assert modal["type"] == MODAL
        inputs = [c for row in modal["data"]["components"] for c in row["components"]]
        assert inputs[0]["value"] == "three cats"
        submitted = await fake.submit_modal(
            modal["data"]["custom_id"], {inputs[0]["custom_id"]: "they purr", inputs[1]["custom_id"]: "6"}
        )
        assert (await fake.wait_for_callback(submitted)).json["type"] == DEFERRED
        video = await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=4, timeout=30)
        await world.settle(bot)
    assert (video.media, video.video_seconds, video.source_job_id) == ("video", 6, 2)
    [sent] = [r.json for r in world.sandbox.requests if r.method == "POST" and r.path == "/xai/videos"]
    assert sent["prompt"] == "they purr" and sent["duration"] == 6
    assert [yarl.URL(u).path for u in sent["images"]] == [yarl.URL(image_2["url"]).path]
    [upload] = world.bot_posts()[-1].files
    assert abs(read_mp4(upload.data).duration - 6) < 0.5


async def test_the_menu_uses_an_image_as_a_reference(world: World) -> None:
    fake = world.fake
    jobs = await ask_three(world)
    message_id = jobs[0].result_message_id or 0
    image_1 = next(a for a in fake.message_attachments(message_id) if a["filename"] == "imagine-1-1.png")
    async with world.bot() as bot:
        click = await fake.invoke_component("imagine:image:1", message_id, component_type=3, values=["ref:1"])
        modal = (await fake.wait_for_callback(click)).json
        assert modal["type"] == MODAL
        [prompt, _] = [c for row in modal["data"]["components"] for c in row["components"]]
        assert prompt["label"] == "Prompt (1 reference image)"
        submitted = await fake.submit_modal(
            modal["data"]["custom_id"], {prompt["custom_id"]: "a dog like this"}
        )
        assert (await fake.wait_for_callback(submitted)).json["type"] == DEFERRED
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=4, timeout=30)
        await world.settle(bot)
    used = world.submits()[-1].json
    assert used["prompt"] == "a dog like this"
    assert [yarl.URL(u).path for u in used["images"]] == [yarl.URL(image_1["url"]).path]


async def test_vary_makes_a_request_with_that_image_as_its_only_reference(world: World) -> None:
    fake = world.fake
    jobs = await ask_three(world)
    message_id = jobs[0].result_message_id or 0
    image_2 = next(a for a in fake.message_attachments(message_id) if a["filename"] == "imagine-2-1.png")
    async with world.bot() as bot:
        click = await fake.invoke_component("imagine:vary:2", message_id)
        assert (await fake.wait_for_callback(click)).json["type"] == DEFERRED
        varied = [
            await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, n, timeout=30)
            for n in (4, 5, 6)
        ]
        await world.settle(bot)
        rows = await bot.store.usage.export(fake.guild_id, 0.0, time.time() + 60, 100)
    usage = [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows]
    # As many images as the request had, in a request of their own, each from image 2.
    assert {(j.request_id, j.request_size) for j in varied} == {(4, 3)}
    assert {(j.source_job_id, j.source_image_index) for j in varied} == {(2, 1)}
    assert {(j.prompt, j.aspect_ratio) for j in varied} == {("three cats", "1:1")}
    assert len({j.result_message_id for j in varied}) == 1
    for sent in world.submits()[-3:]:
        assert sent.json["prompt"] == "three cats"
        assert [yarl.URL(u).path for u in sent.json["images"]] == [yarl.URL(image_2["url"]).path]
    logged = [row for row in usage if row["source_job_id"] == 2]
    assert len(logged) == 3 and {(row["source_image_index"], row["request_id"]) for row in logged} == {(1, 4)}
