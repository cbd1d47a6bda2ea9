"""The store's side of a request's message, on both backends: its jobs in order, and the claim that
lets one composition at a time edit the message."""

from __future__ import annotations

import time

from bot.adapters.store import Store
from bot.core.models import ImageRequest
from testing.fake_discord import FakeDiscord
from tests.request_helpers import channel_origin, write_request


async def test_a_request_s_jobs_come_in_its_order(any_store: Store) -> None:
    origin = channel_origin(FakeDiscord())
    jobs = await write_request(any_store, ImageRequest("four"), origin, 4)
    assert [(j.request_id, j.request_index, j.request_size) for j in jobs] == [
        (jobs[0].id, n, 4) for n in (1, 2, 3, 4)
    ]
    alone = await any_store.jobs.create(ImageRequest("one"), origin, time.time())
    assert [j.id for j in await any_store.jobs.of_request(alone.id)] == [alone.id]


async def test_one_claim_at_a_time_and_where_the_message_is(any_store: Store) -> None:
    now = time.time()
    deliveries = any_store.deliveries
    assert await deliveries.message(7) is None
    first = await deliveries.claim_message(7, now)
    assert first is not None and (first.message_id, first.released_at) == (None, None)
    assert await deliveries.claim_message(7, now + 0.1) is None  # held
    assert await deliveries.release_message(7, now + 0.2, route="channel", message_id=70, channel_id=5)
    again = await deliveries.claim_message(7, now + 0.3)
    assert again is not None and (again.route, again.message_id, again.channel_id) == ("channel", 70, 5)
    assert again.released_at == now + 0.2  # the version a process that let it go then can recognise
    # The image rows of the request's first job never include the message's own row.
    assert await deliveries.of(7) == []
    assert await deliveries.release_message(7, now + 0.4)
    assert (await deliveries.message(7)).message_id == 70  # type: ignore[union-attr]


async def test_a_claim_whose_holder_died_runs_out_with_the_lease(any_store: Store) -> None:
    now = time.time()
    assert await any_store.deliveries.claim_message(8, now) is not None
    later = now + any_store.lease + 1
    if any_store.exclusive:
        # SQLite: one process at a time; a claim left by another process is void at once.
        return
    assert await any_store.deliveries.claim_message(8, now + 1) is None
    taken = await any_store.deliveries.claim_message(8, later)
    assert taken is not None and taken.released_at is None  # not let go: nothing known of the message
