"""What a member sees when /imagine meets an image service that is down: the request waits with a
status that says so, is sent once the service is back, or ends uncounted past OUTAGE_QUEUE_LIMIT."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from bot.core.models import JobStatus
from bot.core.runner import MSG_OUTAGE
from tests.bot_harness import World, wait_for_job
from tests.helpers import FAST_RUNNER
from tests.test_imagine_outcomes import status_edits


async def test_imagine_during_an_outage_waits_then_is_sent_when_the_service_is_back(world: World) -> None:
    world.sandbox.start_outage(1.5)
    async with world.bot() as bot:
        interaction = await world.fake.invoke_slash("imagine", {"prompt": "patient lighthouse"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
    edits = status_edits(world, interaction.token)
    assert any("image service is not answering" in text for text in edits)
    assert job.result_message_id is not None  # the image was posted after all
    assert len(world.submits()) <= 4  # at most three tries found the outage, then one went through
    assert world.sandbox.task_count == 1


async def test_imagine_during_a_long_outage_ends_uncounted_after_the_queue_limit(world: World) -> None:
    world.sandbox.start_outage(60.0)
    async with world.bot(replace(FAST_RUNNER, outage_queue_limit=1.0)) as bot:
        interaction = await world.fake.invoke_slash("imagine", {"prompt": "in vain"})
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.FAILED
    edits = status_edits(world, interaction.token)
    assert any("image service is not answering" in text for text in edits)
    assert MSG_OUTAGE.english() in edits[-1] and "no image this time" in edits[-1]
    assert world.sandbox.task_count == 0
    with sqlite3.connect(world.db_path) as conn:
        [(outcome, counted)] = conn.execute("SELECT outcome, counted FROM usage").fetchall()
    assert (outcome, counted) == ("failed", 0)
