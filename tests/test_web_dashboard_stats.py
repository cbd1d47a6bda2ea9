"""The dashboard's statistics reads (store.stats) on SQLite and PostgreSQL, the folding of quarter-hour
slots into a server's local days, the charts' SVG and CSV, and the forms' bounds against the
/imagine-admin commands' own."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from bot.adapters.store import Store
from bot.core.models import ImageRequest, JobStatus, Origin
from bot.core.policy.quotas import Member
from bot.core.texts import msg, stored
from bot.web.dashboard import setting_changes
from bot.web.dashboard.access import (
    ADMINISTRATOR,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    MAX_STAFF_SERVERS,
    Role,
    role_for,
    staff_at_sign_in,
)
from bot.web.dashboard.chart_svg import Chart, nice_ceiling
from bot.web.dashboard.stats_charts import window
from cogs import admin_limits, admin_videos

GUILD, OTHER = 111, 222
# 2026-03-28 23:30 UTC: already the 29th in Paris (UTC+1), the day before its clocks move to summer time.
LATE = datetime(2026, 3, 28, 23, 30, tzinfo=UTC).timestamp()


async def made(
    store: Store,
    guild: int,
    user: int,
    at: float,
    *,
    seconds: float = 20.0,
    fail: bool = False,
    units: int = 1,
) -> None:
    _, jobs = await store.usage.admit(
        Member(guild, user),
        ImageRequest("p", "1:1"),
        Origin(guild_id=guild, channel_id=1, user_id=user),
        at,
        50,
        units_per_task=units,
    )
    assert len(jobs) == 1
    job = jobs[0]
    await store.jobs.mark_running(job.id, f"t{job.id}", at + 1, at + 2)
    if fail:
        await store.jobs.mark_ended(
            job.id, JobStatus.FAILED, stored(msg("The image service failed.")), at + seconds
        )
    else:
        await store.jobs.mark_completed(job.id, ["http://127.0.0.1:9/x.png"], at + seconds, None)


async def test_statistics_reads_on_both_backends(any_store: Store) -> None:
    store = any_store
    await made(store, GUILD, 1, LATE, seconds=15)
    await made(store, GUILD, 1, LATE + 3600, seconds=45)
    await made(store, GUILD, 2, LATE - 2 * 86_400, seconds=90)
    await made(store, GUILD, 2, LATE + 60, fail=True)
    await made(store, OTHER, 1, LATE)  # another server's: never counted here
    await made(store, GUILD, 3, LATE - 3 * 86_400, units=3)  # one video or dear request: 3 units
    await store.usage.log_refusal(
        guild_id=GUILD, channel_id=1, user_id=3, prompt="x", aspect_ratio=None, ref_count=0,
        reason="cooldown", detail=None, now=LATE,
    )  # fmt: skip
    since, until = LATE - 5 * 86_400, LATE + 86_400
    slots = dict(await store.stats.completed_by_slot(GUILD, since, until))
    assert slots == {
        int(LATE // 900): 1,
        int((LATE + 3600) // 900): 1,
        int((LATE - 2 * 86_400) // 900): 1,
        int((LATE - 3 * 86_400) // 900): 1,
    }
    assert await store.stats.completed_by_member(GUILD, since, until, 10) == [(1, 2), (2, 1), (3, 1)]
    assert await store.stats.completed_by_member(GUILD, since, until, 1) == [(1, 2)]
    assert await store.stats.refusals_by_reason(GUILD, since, until) == [("cooldown", 1)]
    failures = await store.stats.failures_by_error(GUILD, since, until, 10)
    assert failures == [(stored(msg("The image service failed.")), 1)]
    assert sorted(await store.stats.durations(GUILD, since, until, 100)) == [15.0, 20.0, 45.0, 90.0]
    # Counted uses (the failed one was given back) since a moment, the quota chart's numbers.
    assert await store.stats.counted_by_member(GUILD, LATE - 60, 10) == [(1, 2)]
    assert await store.stats.counted_total(GUILD, LATE - 60) == 2
    assert await store.stats.counted_total(GUILD, since) == 3 + 3
    assert await store.stats.counted_by_member(GUILD, since, 1) == [(3, 3)]


def test_days_are_the_servers_days() -> None:
    span = window(LATE, "Europe/Paris", 7)
    assert [d.isoformat() for d in span.dates][-1] == "2026-03-29"  # 00:30 in Paris
    assert datetime.fromtimestamp(span.since, UTC).isoformat() == "2026-03-22T23:00:00+00:00"
    assert window(LATE, "UTC", 1).dates[0].isoformat() == "2026-03-28"


def test_charts_draw_bars_and_write_safe_csv() -> None:
    chart = Chart(
        "images-by-member",
        "t",
        ["member_id", "member", "images"],
        [("1", "=HYPERLINK(evil)", 3), ("2", "Bo", 1)],
        labels=["=HYPERLINK(evil)", "Bo"],
        values=[3.0, 1.0],
        limits=[5.0, None],
    )
    rows = list(csv.reader(io.StringIO(chart.csv_text())))
    assert rows == [["member_id", "member", "images"], ["1", "'=HYPERLINK(evil)", "3"], ["2", "Bo", "1"]]
    shapes = chart.shapes()
    bars = [s for s in shapes if s.css == "bar"]
    limits = [s for s in shapes if s.css == "limit"]
    assert len(bars) == 2 and len(limits) == 1
    assert bars[0].w == 3 * bars[1].w and limits[0].w > bars[0].w
    assert [s.text for s in shapes if s.css == "figure"] == ["3 / 5", "1"]
    assert (
        nice_ceiling(0) == 0 and nice_ceiling(7) == 10 and nice_ceiling(13) == 20 and nice_ceiling(50) == 50
    )


def test_the_forms_take_what_the_commands_take() -> None:
    assert setting_changes.MAX_LIMIT == admin_limits.MAX_LIMIT
    assert setting_changes.MAX_GUILD_CAP == admin_limits.MAX_GUILD_CAP
    assert setting_changes.MAX_COOLDOWN == admin_limits.MAX_COOLDOWN
    assert setting_changes.MAX_RUNNING == admin_limits.MAX_RUNNING
    assert (setting_changes.MIN_VIDEO_RATE, setting_changes.MAX_VIDEO_RATE) == (
        admin_videos.MIN_RATE,
        admin_videos.MAX_RATE,
    )


def test_the_session_keeps_a_small_list_of_the_servers_one_moderates() -> None:
    everything = (1 << 41) - 1
    permissions = {10**18 + n: [0, MANAGE_MESSAGES, MANAGE_GUILD, everything][n % 4] for n in range(200)}
    staff = staff_at_sign_in(permissions, 1_765_000_000.5)
    assert len(staff) == MAX_STAFF_SERVERS
    assert {tuple(v) for v in staff.values()} == {(1, 1_765_000_000), (2, 1_765_000_000)}
    assert len(json.dumps(staff)) <= 1000  # it lives in the encrypted cookie (4 KB at most)
    assert role_for(MANAGE_MESSAGES) is Role.MODERATOR and role_for(ADMINISTRATOR) is Role.ADMIN
    assert role_for(0) is Role.NONE and role_for(0, owner=True) is Role.ADMIN
