"""`/imagine count` end to end (issue 20) through the fake Discord and the sandbox: N tasks of one
request, the member's count limit (server, role, member) and /settings default, the private offer of
the count that fits with its button, the usage log and export, and the terminal's --count."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.core.models import JobStatus
from bot.core.policy.quotas import Member
from bot.core.usage_records import EXPORT_COLUMNS
from bot.discord.client import ImagineBot
from bot.ops.terminal_imagine import run_imagine
from sandbox.server import Sandbox
from testing.fake_discord import FakeDiscord
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.test_admin_commands import admin
from tests.test_cli import cli_settings

DEFERRED = 5


async def imagine(fake: FakeDiscord, options: dict[str, Any], **where: Any) -> dict[str, Any]:
    interaction = await fake.invoke_slash("imagine", {"prompt": "a cat", **options}, **where)
    return (await fake.wait_for_callback(interaction, timeout=10)).json  # type: ignore[no-any-return]


async def roomy(bot: ImagineBot, fake: FakeDiscord, **changes: Any) -> None:
    await bot.store.settings.update_policy(
        fake.guild_id, fake.owner_id, bot.clock.time(), **{"max_running": 100, **changes}
    )


async def usage_rows(bot: ImagineBot, guild_id: int) -> list[dict[str, Any]]:
    rows = await bot.store.usage.export(guild_id, 0, bot.clock.time() + 60, 1000)
    return [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows]


async def delivered(bot: ImagineBot, job_ids: list[int]) -> None:
    for job_id in job_ids:
        await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id, timeout=20)


async def test_count_four_makes_four_tasks_of_one_request_and_every_image_reaches_the_member(
    world: World,
) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await roomy(bot, fake)
        callback = await imagine(fake, {"count": 4})
        assert callback["type"] == DEFERRED and not callback.get("data", {}).get("flags", 0) & EPHEMERAL
        await delivered(bot, [1, 2, 3, 4])
        jobs = [await bot.store.jobs.get(n) for n in (1, 2, 3, 4)]
        assert [(j.request_id, j.request_index, j.request_size, j.status) for j in jobs if j] == [
            (1, n, 4, JobStatus.DELIVERED) for n in (1, 2, 3, 4)
        ]
        # One status message for the request: every task carries it.
        assert len({j.message_id for j in jobs if j}) == 1
        rows = await usage_rows(bot, fake.guild_id)
        assert [(r["job_id"], r["request_id"], r["counted"], r["media"]) for r in rows] == [
            (n, 1, 1, "image") for n in (1, 2, 3, 4)
        ]
        summary = await bot.store.usage.summary(Member(fake.guild_id, fake.user_id), bot.clock.time(), 10)
        assert summary.used_today == 4
        # Every image is in the request's one message, in its order (bot/discord/request_message.py).
        [message_id] = {j.result_message_id for j in jobs if j}
        names = [a["filename"] for a in fake.messages[message_id or 0]["attachments"]]
        assert names == [f"imagine-{n}-1.png" for n in (1, 2, 3, 4)]
    assert len(world.submits()) == 4


async def test_a_count_above_the_members_limit_is_refused_privately_naming_both(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await roomy(bot, fake, count_limit=2)
        callback = await imagine(fake, {"count": 3})
        assert callback["data"]["flags"] & EPHEMERAL
        text = callback["data"]["content"]
        assert "You asked for 3 images, but you may ask for at most 2 images per request here" in text
        await world.settle(bot)
        rows = await usage_rows(bot, fake.guild_id)
        assert [(r["outcome"], r["reason"], r["counted"]) for r in rows] == [("refused", "bad_input", 0)]
    assert world.submits() == []


async def test_more_than_is_left_is_offered_with_a_button_that_makes_what_fits(world: World) -> None:
    fake = world.fake
    async with world.bot(default_daily_quota=3) as bot:
        await roomy(bot, fake)
        assert (await imagine(fake, {"count": 1}))["type"] == DEFERRED
        offer = await imagine(fake, {"count": 4})
        data = offer["data"]
        assert data["flags"] & EPHEMERAL
        assert "You have 2 images left today, and this request needs 4." in data["content"]
        assert "Make 2 images instead?" in data["content"]
        [button] = [c for row in data["components"] for c in row["components"]]
        assert button["label"] == "Make 2 images" and button["custom_id"].startswith("imagine:fewer:")
        [message_id] = [
            int(m["id"])
            for m in fake.messages.values()
            if "Make 2 images instead?" in (m.get("content") or "")
        ]
        click = await fake.invoke_component(button["custom_id"], message_id)
        assert (await fake.wait_for_callback(click, timeout=10)).json["type"] == DEFERRED
        await delivered(bot, [1, 2, 3])
        second = await bot.store.jobs.get(2)
        assert second is not None and (second.request_id, second.request_size, second.prompt) == (
            2,
            2,
            "a cat",
        )
        # The offer is used once: a second click starts nothing and says why.
        again = await fake.invoke_component(button["custom_id"], message_id)
        answer = (await fake.wait_for_callback(again, timeout=10)).json["data"]
        assert answer["flags"] & EPHEMERAL and "no longer available" in answer["content"]
        await world.settle(bot)
    assert len(world.submits()) == 3


async def test_an_offer_clicked_after_the_quota_changed_is_admitted_anew(world: World) -> None:
    fake = world.fake
    async with world.bot(default_daily_quota=2) as bot:
        await roomy(bot, fake)
        offer = (await imagine(fake, {"count": 3}))["data"]
        [button] = [c for row in offer["components"] for c in row["components"]]
        [message_id] = [
            int(m["id"]) for m in fake.messages.values() if "instead?" in (m.get("content") or "")
        ]
        assert (await imagine(fake, {"count": 1}))["type"] == DEFERRED  # one of the two is used meanwhile
        click = await fake.invoke_component(button["custom_id"], message_id)
        answer = (await fake.wait_for_callback(click, timeout=10)).json["data"]
        # 1 left now: the click is a new admission, which offers 1 in turn.
        assert answer["flags"] & EPHEMERAL and "You have 1 image left today" in answer["content"]
        assert "Make 1 image instead?" in answer["content"]
        await world.settle(bot)
    assert len(world.submits()) == 1


async def test_count_limits_per_server_role_and_member_and_the_settings_default(world: World) -> None:
    fake = world.fake
    guild = fake.guild_id
    artist = fake.add_role(guild, "Artist", 0)
    painter = fake.add_role(guild, "Painter", 0)
    fake.guilds[guild].members[fake.user_id].roles.extend([artist, painter])
    async with world.bot() as bot:
        await roomy(bot, fake)
        answer = await admin(fake, "count-limit", {"limit": 1})
        assert "Members may now ask for up to **1 image** per request (was 4 images)" in answer.text
        await admin(fake, "count-limit", {"limit": 2, "role": artist})
        answer = await admin(fake, "count-limit", {"limit": 3, "role": painter})
        assert "gets the highest" in answer.text
        store = bot.store.settings
        assert (await store.guild_policy(guild)).count_limit == 1
        assert await store.role_count_limits(guild) == {artist: 2, painter: 3}
        log = [(e.action, e.target, e.details) for e in await store.admin_log(guild)]
        assert ("count_limit_role", f"role:{painter}", {"limit": 3}) in log
        assert ("policy", None, {"count_limit": 1}) in log
        report = (await admin(fake, "settings")).text
        roles = ", ".join(f"<@&{role}> {limit}" for role, limit in sorted({artist: 2, painter: 3}.items()))
        assert f"Images per request (count-limit): at most 1; roles with their own: {roles}" in report

        # The highest of the member's roles wins over the server's.
        assert "at most 3 images" in (await imagine(fake, {"count": 4}))["data"]["content"]
        # /settings: a default of 4 gives the limit, 3.
        settings = await fake.invoke_slash("settings", {"count": 4})
        shown = (await fake.wait_for_callback(settings)).json["data"]["content"]
        assert "Images per request: 4, but this server allows you at most 3, so you get 3" in shown
        assert (await imagine(fake, {}))["type"] == DEFERRED
        await delivered(bot, [1, 2, 3])
        assert [j.request_size for j in [await bot.store.jobs.get(n) for n in (1, 2, 3)] if j] == [3, 3, 3]

        # The member's own limit wins over their roles; cleared, the roles count again.
        answer = await admin(fake, "count-limit", {"limit": 1, "member": fake.user_id})
        assert "may now ask for up to **1 image** per request (was none)" in answer.text
        assert "at most 1 image per request" in (await imagine(fake, {"count": 2}))["data"]["content"]
        assert (await imagine(fake, {}))["type"] == DEFERRED  # the default, capped to 1
        await delivered(bot, [4])
        assert await bot.store.jobs.get(5) is None
        await admin(fake, "count-limit", {"member": fake.user_id})
        assert await store.user_count_limit(guild, fake.user_id) is None
        both = await admin(fake, "count-limit", {"limit": 2, "role": artist, "member": fake.user_id})
        assert "not both" in both.text
        clear = await fake.invoke_slash("settings", {"clear": "image_count"})
        shown = (await fake.wait_for_callback(clear)).json["data"]["content"]
        assert "Images per request: 1 (the default; this server allows you up to 3)" in shown
        await world.settle(bot)


async def test_personal_use_takes_a_count_with_no_server_limit(world: World) -> None:
    fake = world.fake
    async with world.bot(default_personal_quota=5) as bot:
        callback = await imagine(fake, {"count": 3}, dm=True)
        assert callback["type"] == DEFERRED
        await delivered(bot, [1, 2, 3])
        jobs = [await bot.store.jobs.get(n) for n in (1, 2, 3)]
        assert [(j.guild_id, j.request_id, j.request_size) for j in jobs if j] == [(None, 1, 3)] * 3
        offer = (await imagine(fake, {"count": 4}, dm=True))["data"]
        assert "2 personal images left" in offer["content"] and "Make 2 images instead?" in offer["content"]
        await world.settle(bot)
    assert len(world.submits()) == 3


async def test_the_export_has_one_row_per_task_with_its_request(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await roomy(bot, fake)
        assert (await imagine(fake, {"count": 2}))["type"] == DEFERRED
        assert (await imagine(fake, {"count": 1}))["type"] == DEFERRED
        await delivered(bot, [1, 2, 3])
        today = datetime.now(UTC).date()
        start, end = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
        answer = await admin(fake, "export", {"start": start, "end": end})
        [upload] = answer.files
        rows = list(csv.DictReader(io.StringIO(upload.data.decode())))
        assert [(r["job_id"], r["request_id"], r["media"], r["outcome"]) for r in rows] == [
            ("1", "1", "image", "completed"),
            ("2", "1", "image", "completed"),
            ("3", "3", "image", "completed"),
        ]
        assert {"video_seconds", "source_job_id", "source_image_index", "used_credit"} <= set(rows[0])


async def test_the_terminal_writes_each_image_of_a_count_numbered(sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "art.png"
    stream = io.StringIO()
    stdout = io.StringIO()
    code = await run_imagine(
        cli_settings(sandbox, tmp_path), "a lighthouse", None, [], out, stream=stream, stdout=stdout, count=3
    )
    assert code == 0, stream.getvalue()
    written = [tmp_path / "art.png", tmp_path / "art-2.png", tmp_path / "art-3.png"]
    assert sorted(stdout.getvalue().splitlines()) == sorted(map(str, written))
    tasks = list(sandbox.tasks)
    assert len(tasks) == 3
    assert {path.read_bytes() for path in written} == {sandbox.image_bytes(task) for task in tasks}
    # An existing NAME-2.png is kept: refused before anything is sent.
    stream = io.StringIO()
    code = await run_imagine(
        cli_settings(sandbox, tmp_path), "again", None, [], out.with_name("new.png"), stream=stream,
        stdout=io.StringIO(), count=1,
    )  # fmt: skip
    assert code == 0
    (tmp_path / "keep-2.png").write_bytes(b"mine")
    stream = io.StringIO()
    code = await run_imagine(
        cli_settings(sandbox, tmp_path), "again", None, [], tmp_path / "keep.png", stream=stream,
        stdout=io.StringIO(), count=2,
    )  # fmt: skip
    assert code == 2 and "keep-2.png" in stream.getvalue()
    assert (tmp_path / "keep-2.png").read_bytes() == b"mine" and not (tmp_path / "keep.png").exists()
    assert len(sandbox.tasks) == 4


async def test_the_terminal_refuses_a_count_to_standard_output(sandbox: Sandbox, tmp_path: Path) -> None:
    stream = io.StringIO()
    code = await run_imagine(
        cli_settings(sandbox, tmp_path), "a cat", None, [], Path("-"), stream=stream,
        stdout=io.TextIOWrapper(io.BytesIO()), count=2,
    )  # fmt: skip
    assert code == 2 and "--out - writes one image" in stream.getvalue()
    assert not sandbox.tasks


async def test_an_offer_clicked_after_a_restart_says_it_is_gone_and_bills_nothing(world: World) -> None:
    """The offer lives in the memory of the process that made it; another process (here the bot after
    a restart) still answers its button, by the custom_id's template, and says what to do."""
    fake = world.fake
    async with world.bot(default_daily_quota=2) as bot:
        await roomy(bot, fake)
        offer = (await imagine(fake, {"count": 4}))["data"]
        [button] = [c for row in offer["components"] for c in row["components"]]
        [message_id] = [
            int(m["id"]) for m in fake.messages.values() if "instead?" in (m.get("content") or "")
        ]
    async with world.bot(default_daily_quota=2) as bot:
        click = await fake.invoke_component(button["custom_id"], message_id, locale="zh-CN")
        answer = (await fake.wait_for_callback(click, timeout=10)).json["data"]
        assert answer["flags"] & EPHEMERAL and "这个提议已失效" in answer["content"]
        await world.settle(bot)
        assert [r["outcome"] for r in await usage_rows(bot, fake.guild_id)] == ["refused"]
    assert world.submits() == []
