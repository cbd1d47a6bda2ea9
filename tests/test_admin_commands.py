"""/imagine-admin through the fake Discord: refused to non-admins on the server side, every change
reflected in the store, bans, prompt rules, the mod-log, stats and the CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.durations import DurationError, parse_duration
from bot.core.models import JobStatus
from bot.core.policy.quotas import GuildPolicy, Member, discord_time
from bot.core.reports import ReportError, UsageCsv, export_bounds, match_timezones
from bot.core.usage_records import EXPORT_COLUMNS
from testing.fake_discord import FakeDiscord, UploadedFile
from tests.bot_harness import EPHEMERAL, World, wait_for_job

DEFERRED = 5


@dataclass
class Answer:
    text: str
    files: list[UploadedFile] = field(default_factory=list)


async def admin(
    fake: FakeDiscord, subcommand: str, options: dict[str, Any] | None = None, *, user_id: int | None = None
) -> Answer:
    """Run `/imagine-admin <subcommand>` (as the moderator unless told) and return its private answer,
    following a deferral to the follow-up that carries it."""
    interaction = await fake.invoke_slash(
        "imagine-admin", options or {}, subcommand=subcommand, user_id=user_id or fake.moderator_id
    )
    callback = (await fake.wait_for_callback(interaction)).json
    assert callback["data"]["flags"] & EPHEMERAL
    if callback["type"] == DEFERRED:
        path = f"/webhooks/{fake.application_id}/{interaction.token}"
        followup = await fake.wait_for_request(lambda r: r.method == "POST" and r.path == path)
        assert followup.json["flags"] & EPHEMERAL
        assert followup.json["allowed_mentions"] == {"parse": []}
        return Answer(followup.json["content"], followup.files)
    assert callback["data"]["allowed_mentions"] == {"parse": []}
    return Answer(callback["data"]["content"])


async def imagine(fake: FakeDiscord, prompt: str, user_id: int | None = None) -> dict[str, Any]:
    interaction = await fake.invoke_slash("imagine", {"prompt": prompt}, user_id=user_id)
    return (await fake.wait_for_callback(interaction)).json  # type: ignore[no-any-return]


# -- permissions ---------------------------------------------------------------------------------------


async def test_non_admins_are_refused_every_admin_command_and_nothing_changes(world: World) -> None:
    fake = world.fake
    role = fake.add_role(fake.guild_id, "Artist", 0)
    helper_role = fake.add_role(fake.guild_id, "Helper", 1 << 13)  # Manage Messages, not Manage Server
    helper = fake.add_member(fake.guild_id, username="helper-hal", roles=[helper_role])
    target = fake.user_id
    calls: list[tuple[str, dict[str, Any]]] = [
        ("quota default", {"limit": 100}),
        ("quota role", {"role": role, "limit": 50}),
        ("quota user", {"member": target, "unlimited": True}),
        ("quota grant", {"member": target, "credits": 100}),
        ("quota reset", {"member": target}),
        ("quota guildcap", {"limit": 5}),
        ("quota exempt", {"enabled": True}),
        ("cooldown", {"seconds": 60}),
        ("concurrency", {"jobs": 10}),
        ("timezone", {"name": "Europe/Paris"}),
        ("ban", {"member": fake.moderator_id, "reason": "coup"}),
        ("unban", {"member": target}),
        ("bans", {}),
        ("blocklist add", {"kind": "word", "pattern": "anything"}),
        ("blocklist remove", {"id": 1}),
        ("blocklist list", {}),
        ("modlog", {"channel": fake.channel_id, "finished": True}),
        ("stats", {}),
        ("export", {"start": "2020-01-01", "end": "2030-01-01"}),
    ]
    async with world.bot() as bot:
        for who in (target, helper):
            for subcommand, options in calls:
                answer = await admin(fake, subcommand, options, user_id=who)
                assert answer.text == "You need the Manage Server permission to use `/imagine-admin`.", (
                    subcommand
                )
                assert not answer.files
        store, guild = bot.store, fake.guild_id
        assert await store.settings.admin_log(guild) == []
        assert await store.settings.guild_policy(guild) == GuildPolicy(guild)
        assert await store.settings.role_quotas(guild) == {}
        assert await store.settings.rules(guild) == []
        assert await store.settings.bans(guild, bot.clock.time()) == []
        summary = await store.usage.summary(Member(guild, target), bot.clock.time(), 10)
        assert (summary.limit, summary.credits) == (10, 0)
        # Discord declares the group for Manage Server only; the check above holds whatever a server
        # does with that default.
        [group] = [c for c in fake.commands[guild] if c["name"] == "imagine-admin"]
        assert str(group["default_member_permissions"]) == str(1 << 5)  # Manage Server
        # The owner needs no role for it.
        assert "(was" in (await admin(fake, "quota default", {"limit": 3}, user_id=fake.owner_id)).text


async def test_admin_commands_refuse_direct_messages(world: World) -> None:
    async with world.bot():
        interaction = await world.fake.invoke_slash(
            "imagine-admin", {}, subcommand="bans", dm=True, user_id=world.fake.moderator_id
        )
        callback = (await world.fake.wait_for_callback(interaction)).json
    assert "not in DMs" in callback["data"]["content"] and callback["data"]["flags"] & EPHEMERAL


# -- quotas --------------------------------------------------------------------------------------------


async def test_moderator_changes_quotas_and_the_store_reflects_it(world: World) -> None:
    fake = world.fake
    guild, user = fake.guild_id, fake.user_id
    role = fake.add_role(guild, "Artist", 0)
    member = Member(guild, user)
    async with world.bot() as bot:
        store = bot.store

        async def summary() -> Any:
            return await store.usage.summary(member, bot.clock.time(), bot.settings.default_daily_quota)

        answer = await admin(fake, "quota default", {"limit": 5})
        assert answer.text.startswith("The server's daily limit is now **5 a day** (was the bot default, 10")
        assert (await store.settings.guild_policy(guild)).default_quota == 5

        answer = await admin(fake, "quota role", {"role": role, "limit": 20})
        assert f"Daily limit for <@&{role}> is now **20 a day** (was none)" in answer.text
        assert await store.settings.role_quotas(guild) == {role: 20}
        answer = await admin(fake, "quota role", {"role": role, "limit": 0})
        assert "**off (0)** (was 20 a day)" in answer.text
        answer = await admin(fake, "quota role", {"role": role})
        assert "no longer has a daily limit of its own (was off (0))" in answer.text
        assert await store.settings.role_quotas(guild) == {}
        assert "quota default" in (await admin(fake, "quota role", {"role": guild, "limit": 3})).text

        answer = await admin(fake, "quota user", {"member": user, "limit": 3})
        assert answer.text == f"<@{user}> now has a personal limit of **3 a day**."
        assert (await summary()).limit == 3
        await admin(fake, "quota user", {"member": user, "unlimited": True})
        assert (await summary()).limit is None
        answer = await admin(fake, "quota user", {"member": user, "limit": 2, "unlimited": True})
        assert "not both" in answer.text
        assert (await summary()).limit is None
        answer = await admin(fake, "quota user", {"member": user})
        assert "follow their roles and the server default again (now **5 a day**)" in answer.text
        assert (await summary()).limit == 5

        answer = await admin(fake, "quota grant", {"member": user, "credits": 4})
        assert "Gave" in answer.text and "they now have **4**" in answer.text
        assert (await summary()).credits == 4
        answer = await admin(fake, "quota grant", {"member": user, "credits": -10})
        assert "Took back 10 credits" in answer.text and "they now have **0**" in answer.text
        assert (await summary()).credits == 0

        assert (await imagine(fake, "one for today"))["type"] == DEFERRED
        await wait_for_job(bot, lambda j: j.delivered_at is not None)
        assert (await summary()).used_today == 1
        answer = await admin(fake, "quota reset", {"member": user})
        assert f"Gave <@{user}> back **1 use** of today." in answer.text
        assert (await summary()).used_today == 0

        await admin(fake, "cooldown", {"seconds": 90})
        assert (await store.settings.guild_policy(guild)).cooldown_seconds == 90
        assert "no cooldown" in (await admin(fake, "cooldown", {"seconds": 0})).text
        answer = await admin(fake, "concurrency", {"jobs": 6})
        assert "**6 images** running at once (was 4)" in answer.text
        assert (await store.settings.guild_policy(guild)).max_running == 6
        assert "must be from 1 to 20" in (await admin(fake, "concurrency", {"jobs": 0})).text
        assert (await store.settings.guild_policy(guild)).max_running == 6

        answer = await admin(fake, "timezone", {"name": "Europe/Paris"})
        assert "00:00 in **Europe/Paris** (was UTC)" in answer.text and "<t:" in answer.text
        assert (await store.settings.guild_policy(guild)).timezone == "Europe/Paris"
        answer = await admin(fake, "timezone", {"name": "Mars/Olympus_Mons"})
        assert "not a time zone I know" in answer.text and "Nothing was changed" in answer.text
        assert (await store.settings.guild_policy(guild)).timezone == "Europe/Paris"

        answer = await admin(fake, "quota guildcap", {"limit": 50})
        assert "**50 images a day** together (was none)" in answer.text
        assert (await store.settings.guild_policy(guild)).daily_cap == 50
        assert "no daily cap" in (await admin(fake, "quota guildcap")).text
        assert (await store.settings.guild_policy(guild)).daily_cap is None

        assert "**exempt**" in (await admin(fake, "quota exempt", {"enabled": True})).text
        assert (await store.settings.guild_policy(guild)).exempt_managers is True

        log = await store.settings.admin_log(guild)
        assert {entry.actor_id for entry in log} == {fake.moderator_id}
        actions = {entry.action for entry in log}
        assert {"policy", "quota_role", "quota_user", "quota_grant", "quota_reset"} <= actions
        # Refused changes (both options, a bad zone, a range) were not logged as changes.
        assert not any(e.details.get("timezone") == "Mars/Olympus_Mons" for e in log)


# -- bans ----------------------------------------------------------------------------------------------


async def test_ban_with_duration_refuses_imagine_until_unbanned(world: World) -> None:
    fake = world.fake
    guild, user = fake.guild_id, fake.user_id
    other = fake.add_member(guild, username="other-olga")
    async with world.bot() as bot:
        answer = await admin(
            fake, "ban", {"member": user, "reason": "flooding  the channel", "duration": "2h"}
        )
        [ban] = await bot.store.settings.bans(guild, bot.clock.time())
        assert ban.user_id == user and ban.reason == "flooding the channel" and ban.expires_at is not None
        assert abs(ban.expires_at - (bot.clock.time() + 7200)) < 5
        expiry = discord_time(ban.expires_at, "f")
        assert f"<@{user}> cannot use the image bot in this server until {expiry}" in answer.text

        refusal = await imagine(fake, "let me in")
        assert refusal["type"] == 4 and refusal["data"]["flags"] & EPHEMERAL
        assert expiry in refusal["data"]["content"] and "flooding the channel" in refusal["data"]["content"]

        answer = await admin(fake, "ban", {"member": other, "duration": "soon"})
        assert "was not banned" in answer.text and "`30m`" in answer.text
        await admin(fake, "ban", {"member": other})
        listing = (await admin(fake, "bans")).text
        assert "Bans in force (2)" in listing
        assert f"<@{user}> until {expiry}" in listing and "`flooding the channel`" in listing
        assert f"<@{other}> until lifted" in listing and f"by <@{fake.moderator_id}>" in listing

        assert (
            await admin(fake, "unban", {"member": user})
        ).text == f"<@{user}> can use the image bot again."
        assert "was not banned" in (await admin(fake, "unban", {"member": user})).text
        assert [b.user_id for b in await bot.store.settings.bans(guild, bot.clock.time())] == [other]
        assert (await imagine(fake, "let me in"))["type"] == DEFERRED
        await wait_for_job(bot, lambda j: j.delivered_at is not None)


# -- prompt rules --------------------------------------------------------------------------------------


async def test_blocklist_rules_and_a_look_alike_prompt(world: World) -> None:
    fake = world.fake
    guild = fake.guild_id
    async with world.bot() as bot:
        assert "no prompt rules" in (await admin(fake, "blocklist list")).text
        answer = await admin(fake, "blocklist add", {"kind": "word", "pattern": "moon"})
        assert answer.text.startswith("Added rule #1 word `moon`.")
        answer = await admin(fake, "blocklist add", {"kind": "regex", "pattern": r"red\s*planet"})
        assert answer.text.startswith(r"Added rule #2 regex `red\s*planet`.")
        answer = await admin(fake, "blocklist add", {"kind": "regex", "pattern": "(unclosed"})
        assert answer.text.startswith("That rule was not added: that regular expression is not valid")
        answer = await admin(fake, "blocklist add", {"kind": "regex", "pattern": r"(a)\1"})
        assert "back-references" in answer.text
        answer = await admin(fake, "blocklist add", {"kind": "word", "pattern": "sun"})
        listing = (await admin(fake, "blocklist list")).text
        assert (
            "#1 word `moon`" in listing
            and r"#2 regex `red\s*planet`" in listing
            and "#3 word `sun`" in listing
        )

        assert (await admin(fake, "blocklist remove", {"id": 3})).text == "Removed rule #3 word `sun`."
        assert "no rule #3" in (await admin(fake, "blocklist remove", {"id": 3})).text
        assert [r.id for r in await bot.store.settings.rules(guild)] == [1, 2]

        # Two Cyrillic "\u043e" for the Latin "o": looks the same, blocked the same.
        refused = await imagine(fake, "a full m\u043e\u043en over the sea")
        assert refused["type"] == 4 and refused["data"]["flags"] & EPHEMERAL
        text = refused["data"]["content"]
        assert text == "This prompt is not allowed in this server. Please rephrase it."
        refused = await imagine(fake, "a RED   Planet at dawn")
        assert refused["data"]["content"] == text
        assert (await imagine(fake, "the sun at noon"))[
            "type"
        ] == DEFERRED  # a removed rule no longer applies
        await wait_for_job(bot, lambda j: j.delivered_at is not None)

        rows = await bot.store.usage.export(guild, 0, bot.clock.time() + 60, 100)
    usage = [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows]
    blocked = [row for row in usage if row["reason"] == "blocked_prompt"]
    assert [(row["outcome"], row["counted"]) for row in blocked] == [("refused", 0), ("refused", 0)]
    assert "#1 word 'moon'" in blocked[0]["detail"] and "#2 regex" in blocked[1]["detail"]
    assert world.submits() and len(world.submits()) == 1


# -- mod-log -------------------------------------------------------------------------------------------


async def test_modlog_gets_refusals_and_finished_images_without_pings(world: World) -> None:
    fake = world.fake
    modlog = fake.add_channel(fake.guild_id, "mod-log")
    async with world.bot() as bot:
        answer = await admin(fake, "modlog", {"channel": modlog})
        assert answer.text == f"The mod-log is now <#{modlog}>: it gets a short entry for every refusal."
        assert (await bot.store.settings.guild_policy(fake.guild_id)).modlog_channel_id == modlog
        await admin(fake, "blocklist add", {"kind": "word", "pattern": "forbidden"})
        await imagine(fake, "forbidden fruit @everyone")
        entry = await fake.wait_for_request(
            lambda r: (
                r.method == "POST"
                and r.path == f"/channels/{modlog}/messages"
                and "blocked_prompt" in r.json["content"]
            )
        )
        assert entry.json["allowed_mentions"] == {"parse": []}
        assert "blocked_prompt" in entry.json["content"] and f"<@{fake.user_id}>" in entry.json["content"]
        assert "@everyone" not in entry.json["content"]

        answer = await admin(fake, "modlog", {"channel": modlog, "finished": True})
        assert "every refusal and every finished image" in answer.text
        await imagine(fake, "an apple")
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
        link = f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{job.result_message_id}"
        finished = await fake.wait_for_request(
            lambda r: (
                r.method == "POST" and r.path == f"/channels/{modlog}/messages" and link in r.json["content"]
            )
        )
        assert finished.json["allowed_mentions"] == {"parse": []}

        assert "**off**" in (await admin(fake, "modlog")).text
        policy = await bot.store.settings.guild_policy(fake.guild_id)
        assert (policy.modlog_channel_id, policy.modlog_finished) == (None, False)
        # Each change was said there too (the last one in the channel the mod-log leaves).
        await fake.wait_for_request(
            lambda r: r.path == f"/channels/{modlog}/messages" and "The mod-log is off." in r.json["content"]
        )
    entries = [r.json["content"] for r in world.bot_posts(modlog)]
    changes = [e for e in entries if e.startswith(f"🛠️ <@{fake.moderator_id}> with /imagine-admin: ")]
    assert [e.split(": ", 1)[1] for e in changes] == [
        f"The mod-log is now <#{modlog}>: refusals.",
        "Added prompt rule #1 word `forbidden`.",
        f"The mod-log is now <#{modlog}>: refusals and finished images.",
        "The mod-log is off.",
    ]
    assert len(entries) - len(changes) == 2  # the refusal and the finished image


# -- reports -------------------------------------------------------------------------------------------


async def test_stats_and_export_match_the_usage_log(world: World) -> None:
    fake = world.fake
    guild, user = fake.guild_id, fake.user_id
    world.sandbox.force_next("failed", error_message="upstream error")
    async with world.bot() as bot:
        await admin(fake, "quota default", {"limit": 3})
        await admin(fake, "concurrency", {"jobs": 3})
        await admin(fake, "blocklist add", {"kind": "word", "pattern": "forbidden"})
        callbacks = await asyncio.gather(*(imagine(fake, f"picture {n}") for n in range(3)))
        assert [c["type"] for c in callbacks] == [DEFERRED] * 3
        for job_id in (1, 2, 3):
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job_id=job_id)
        await admin(fake, "quota default", {"limit": 2})  # the failed job was refunded: 2 used
        assert (await imagine(fake, "one more"))["data"]["content"].startswith("You have used all 2")
        await imagine(fake, "forbidden fruit")
        jobs = [await bot.store.jobs.get(i) for i in (1, 2, 3)]
        assert [j.status for j in jobs if j is not None].count(JobStatus.DELIVERED) == 2

        report = (await admin(fake, "stats")).text
        assert report.startswith("**📊 Image bot report for Imagine Test Guild**")
        for window in ("**Today (since 00:00 UTC)**", "**Last 7 days**", "**Last 30 days**"):
            assert window in report
        assert report.count("Generations: 3 (2 completed, 1 failed or timed out) · failure rate 33.3%") == 3
        assert report.count("Refused: 2 (blocked_prompt 1, quota 1)") == 3
        assert report.count(f"Top users: <@{user}> 3") == 3

        today = datetime.now(UTC).date()
        start, end = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
        answer = await admin(fake, "export", {"start": start, "end": end})
        assert answer.text.startswith(f"5 usage rows from {start} to {end} (UTC)")
        [upload] = answer.files
        assert upload.filename == f"usage-{guild}-{start}-to-{end}.csv"
        stored = await bot.store.usage.export(guild, 0, bot.clock.time() + 60, 100)

        assert "is before the start date" in (await admin(fake, "export", {"start": end, "end": start})).text
        assert "not a real date" in (await admin(fake, "export", {"start": "2025-02-30", "end": end})).text
        assert "must look like" in (await admin(fake, "export", {"start": "yesterday", "end": end})).text
        assert (
            "No usage rows"
            in (await admin(fake, "export", {"start": "2001-01-01", "end": "2001-01-31"})).text
        )

    table = list(csv.reader(io.StringIO(upload.data.decode())))
    assert table[0] == list(EXPORT_COLUMNS)
    assert len(table) == 1 + len(stored) == 6
    for line, row in zip(table[1:], stored, strict=True):
        record = dict(zip(EXPORT_COLUMNS, line, strict=True))
        expected = dict(zip(EXPORT_COLUMNS, row, strict=True))
        created = datetime.fromisoformat(record.pop("created_at"))
        assert created.tzinfo is not None and created.utcoffset() == timedelta(0)
        assert abs(created.timestamp() - expected.pop("created_at")) < 0.001
        assert record == {k: "" if v is None else str(v) for k, v in expected.items()}
    outcomes = sorted(record[EXPORT_COLUMNS.index("outcome")] for record in table[1:])
    assert outcomes == ["completed", "completed", "failed", "refused", "refused"]


async def test_export_pages_through_rows_sharing_one_instant(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cogs.admin_reports

    monkeypatch.setattr(cogs.admin_reports, "EXPORT_CHUNK", 3)
    fake = world.fake
    async with world.bot() as bot:
        now = bot.clock.time()
        for n, at in enumerate(
            [now - 5, now - 4, now - 4, now - 4, now - 4, now - 4, now - 4, now - 3, now - 2]
        ):
            await bot.store.usage.log_refusal(
                guild_id=fake.guild_id,
                channel_id=fake.channel_id,
                user_id=fake.user_id,
                prompt=f"=HYPERLINK(row {n})",
                aspect_ratio=None,
                ref_count=0,
                reason="bad_input",
                detail=None,
                now=at,
            )
        day = datetime.now(UTC).date()
        start, end = (day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()
        answer = await admin(fake, "export", {"start": start, "end": end})
    rows = list(csv.DictReader(io.StringIO(answer.files[0].data.decode())))
    assert [row["prompt"] for row in rows] == [f"'=HYPERLINK(row {n})" for n in range(9)]
    assert [int(row["id"]) for row in rows] == sorted(int(row["id"]) for row in rows)


# -- pure helpers --------------------------------------------------------------------------------------


def test_durations() -> None:
    assert parse_duration("30m") == 1800
    assert parse_duration("12h") == 43_200
    assert parse_duration("7d") == 7 * 86_400
    assert parse_duration("2w") == 14 * 86_400
    assert parse_duration("1d 12h") == parse_duration("1d12h") == 129_600
    assert parse_duration("3 days") == 3 * 86_400
    for bad in ("", "soon", "5", "0m", "2y", "1d and 2h", "9999w"):
        with pytest.raises(DurationError):
            parse_duration(bad)


def test_export_bounds_follow_the_guild_time_zone() -> None:
    begin, end = export_bounds("2025-01-01", "2025-01-01", "Europe/Paris")
    assert datetime.fromtimestamp(begin, UTC) == datetime(2024, 12, 31, 23, 0, tzinfo=UTC)
    assert end - begin == 86_400
    begin, end = export_bounds("2025-03-30", "2025-03-30", "Europe/Paris")  # the spring-forward day
    assert end - begin == 23 * 3600
    with pytest.raises(ReportError):
        export_bounds("2025-01-02", "2025-01-01", "UTC")


def test_csv_stays_under_its_byte_budget() -> None:
    row = (
        1,
        0.0,
        2,
        3,
        4,
        "refused",
        "quota",
        None,
        0,
        None,
        0,
        None,
        None,
        None,
        None,
        "x" * 100,
        *[None] * 6,
    )
    table = UsageCsv(max_bytes=1000)
    assert not table.extend([row] * 50)
    assert table.full and 0 < table.rows < 10 and len(table.data()) <= 1000


def test_time_zone_autocomplete() -> None:
    assert match_timezones("paris")[0] == "Europe/Paris"
    assert match_timezones("america/new")[0] == "America/New_York"
    assert len(match_timezones("a")) == 25
    assert "UTC" in match_timezones("")


async def test_repeated_refusals_of_one_member_do_not_flood_the_modlog(world: World) -> None:
    fake = world.fake
    modlog = fake.add_channel(fake.guild_id, "mod-log")
    async with world.bot():
        await admin(fake, "modlog", {"channel": modlog})
        await admin(fake, "blocklist add", {"kind": "regex", "pattern": r"b[a4]d_*thing"})
        for _ in range(4):
            assert (await imagine(fake, "a bad_thing"))["data"]["flags"] & EPHEMERAL
        await admin(fake, "ban", {"member": fake.moderator_id, "reason": "test"}, user_id=fake.owner_id)
        assert (await imagine(fake, "hello", user_id=fake.moderator_id))["data"]["flags"] & EPHEMERAL
        await fake.wait_for_request(
            lambda r: r.path == f"/channels/{modlog}/messages" and "banned" in r.json["content"]
        )
    entries = [
        r.json["content"] for r in world.bot_posts(modlog) if "/imagine-admin" not in r.json["content"]
    ]
    assert len(entries) == 2  # one per member and reason a minute, not one per attempt
    assert "`#1 regex 'b[a4]d_*thing'`" in entries[0]  # the rule shows as code, not as markdown


async def test_refund_cancelled_setting(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        assert (await bot.store.settings.guild_policy(fake.guild_id)).refund_cancelled is False
        answer = await admin(fake, "quota refund-cancelled", {"enabled": True})
        assert "given back" in answer.text
        assert (await bot.store.settings.guild_policy(fake.guild_id)).refund_cancelled is True
        world.sandbox.force_next(never_finish=True)
        interaction = await fake.invoke_slash("imagine", {"prompt": "changed my mind"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        click = await fake.invoke_component("imagine:cancel:1", interaction.original_message_id or 0)
        await fake.wait_for_callback(click)
        await wait_for_job(bot, lambda j: j.status is JobStatus.CANCELLED)
        summary = await bot.store.usage.summary(Member(fake.guild_id, fake.user_id), bot.clock.time(), 10)
        assert summary.used_today == 0
