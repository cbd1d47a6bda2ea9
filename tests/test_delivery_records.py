"""Each image's delivery is recorded before it is sent (the deliveries table), the routes a job tries
come from one planner, and a private image the database refused to record is not sent again."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from bot.adapters.store import Store
from bot.adapters.store.deliveries_repo import REFUSED, SENDING, SENT, TOLD, UNCONFIRMED
from bot.core.models import DM, Job, JobStatus
from bot.discord.route_planner import image_routes, notice_routes
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.helpers import wait_until
from tests.test_personal_settings import settings
from tests.test_store_pressure import QUICK_RECORD, job_row, set_pragma
from tests.test_styles import admin

NOW = 1_800_000_000.0


# -- the repository ----------------------------------------------------------------------------------


async def test_an_intent_stands_until_it_is_settled_and_only_a_refusal_frees_the_images(
    any_store: Store,
) -> None:
    store = any_store
    assert await store.deliveries_of(7) == []
    assert await store.intend_delivery(7, [1, 2], "ephemeral", NOW)
    # While the images may be on their way, nothing else may be sent.
    assert not await store.intend_delivery(7, [2], "dm", NOW + 1)
    assert [(d.image_index, d.route, d.state) for d in await store.deliveries_of(7)] == [
        (1, "ephemeral", SENDING),
        (2, "ephemeral", SENDING),
    ]
    assert await store.settle_delivery(7, [1, 2], REFUSED, NOW + 2)
    assert await store.intend_delivery(7, [1, 2], "dm", NOW + 3)  # refused: the next route may try
    big = 1_300_000_000_000_000_000  # Discord ids need 64 bits
    assert await store.settle_delivery(7, [1, 2], SENT, NOW + 4, message_id=big, channel_id=big + 1)
    rows = await store.deliveries_of(7)
    assert {(d.route, d.state, d.message_id, d.channel_id) for d in rows} == {("dm", SENT, big, big + 1)}
    assert not await store.intend_delivery(7, [1], "channel", NOW + 5)
    # Settling is a compare-and-set: the requester is told once, whoever asks twice.
    assert await store.intend_delivery(8, [1], "followup", NOW)
    assert await store.settle_delivery(8, [1], UNCONFIRMED, NOW + 1)
    assert await store.settle_delivery(8, [1], TOLD, NOW + 2, was=(UNCONFIRMED,))
    assert not await store.settle_delivery(8, [1], TOLD, NOW + 3, was=(UNCONFIRMED,))


# -- the planner -------------------------------------------------------------------------------------


def job(**fields: object) -> Job:
    base = Job(
        id=1,
        source="discord",
        status=JobStatus.COMPLETED,
        prompt="p",
        aspect_ratio=None,
        reference_urls=[],
        guild_id=10,
        channel_id=20,
        user_id=30,
        interaction_id=40,
        application_id=50,
        interaction_token="token",
        token_expires_at=NOW + 900,
        message_id=60,
        task_id="t",
        trace_id=None,
        api_status=None,
        created_at=NOW - 60,
        submitted_at=NOW - 59,
        finished_at=NOW - 1,
        delivered_at=None,
        poll_count=1,
        poll_errors=0,
        next_poll_at=None,
        error=None,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def kinds(routes: list[object]) -> list[str]:
    return [f"{r.kind}:{r.why}" if r.kind == "dm" else r.kind for r in routes]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("fields", "at", "expected"),
    [
        ({}, NOW, ["channel", "status", "dm:refused"]),
        ({}, NOW + 3600, ["channel", "dm:refused"]),  # the interaction's token is gone
        ({"deliver_to": "ephemeral"}, NOW, ["ephemeral", "dm:private", "channel", "status"]),
        ({"deliver_to": "dm"}, NOW, ["dm:private", "ephemeral", "channel", "status"]),
        ({"deliver_to": "ephemeral"}, NOW + 3600, ["dm:private", "channel"]),
        ({"context": DM, "guild_id": None}, NOW, ["followup", "status", "dm:late"]),
        ({"context": DM, "guild_id": None}, NOW + 3600, ["dm:late"]),
    ],
)
def test_the_planner_names_the_routes_in_order(
    fields: dict[str, object], at: float, expected: list[str]
) -> None:
    assert kinds(image_routes(job(**fields), at)) == expected


def test_news_of_a_failure_goes_to_the_status_message_first() -> None:
    assert kinds(notice_routes(job(), NOW)) == ["status", "channel", "dm:refused"]
    assert kinds(notice_routes(job(context=DM, guild_id=None), NOW)) == ["status", "dm:late"]
    assert kinds(notice_routes(job(deliver_to="dm"), NOW + 3600)) == ["channel", "dm:refused"]


# -- a refused record on a private route -------------------------------------------------------------


@pytest.mark.parametrize("delivery", ["dm", "ephemeral"])
async def test_a_private_image_the_database_refused_to_record_is_not_sent_again(
    world: World, delivery: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The image reached Discord; then another process holds the database until both the sink and the
    runner give up recording it. The next start looks on the route: a DM is found in the DM channel's
    history; a message only the requester saw cannot be listed, so it is not sent again and the
    requester is told privately, once."""
    fake = world.fake
    config = replace(QUICK_RECORD, record_attempts=2)
    async with world.bot(runner_config=config) as first:
        await admin(world, "private-images", {"enabled": True})
        await settings(world, {"delivery": delivery})
        await set_pragma(first.store, "busy_timeout = 50")
        await fake.invoke_slash("imagine", {"prompt": "kept private"})
        await fake.wait_for_request(lambda r: bool(r.files) and r.status == 200 and r.method == "POST")
        other = sqlite3.connect(world.db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            await wait_until(
                lambda: "could not record its delivery after 2 attempts" in caplog.text,
                "the runner to give up recording the delivery",
            )
        finally:
            other.execute("ROLLBACK")
            other.close()
    assert job_row(world.db_path)["delivered_at"] is None

    async with world.bot() as second:
        again = await wait_for_job(second, lambda j: j.status is JobStatus.DELIVERED)
    images = [m for m in fake.messages.values() if m["attachments"]]
    notes = [m for m in fake.messages.values() if "may not have reached you" in m["content"]]
    assert len(images) == 1 and again.delivery == delivery
    if delivery == "dm":
        assert int(images[0]["channel_id"]) == fake.dm_channel(fake.user_id) and notes == []
        assert again.result_message_id == int(images[0]["id"])
    else:
        assert images[0]["flags"] & EPHEMERAL
        [note] = notes
        assert note["flags"] & EPHEMERAL and "/history" in note["content"]
