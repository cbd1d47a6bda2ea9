"""Log lines: JSON or text, never a secret (API key, bot token, interaction token), never forged by a
value carrying a newline; and `.env` files read the way people write them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.core.log_context import log_context
from bot.core.models import ImageRequest, Origin
from bot.ops.config import load_settings
from bot.ops.logs import setup_logging
from sandbox.server import Sandbox
from tests.helpers import RecordingSink, running_runner

KEY = "sk-live-0123456789abcdef"
TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789ab"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OkV4YW1wbGVUb2tlbg"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


async def test_no_secret_in_any_debug_line_even_from_aiohttp_errors(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    setup_logging("DEBUG", [KEY, TOKEN], "json")
    log = logging.getLogger("aiohttp.client")
    # A real aiohttp error whose text carries the key (in the URL): the sandbox answers 401.
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(f"{sandbox.base_url}/xai/tasks", params={"taskId": KEY}) as answer:
                answer.raise_for_status()
        except aiohttp.ClientResponseError as error:
            assert KEY in str(error)
            log.debug("poll failed: %s", error, exc_info=True)
    logging.getLogger("discord.http").debug("Authorization: Bot %s", TOKEN)
    logging.getLogger("discord.webhook.async_").debug(
        "POST http://127.0.0.1/api/v10/interactions/1234567890123/%s/callback has returned 204",
        INTERACTION_TOKEN,
    )
    logging.getLogger("discord.webhook.async_").debug(
        "PATCH https://discord.com/api/v10/webhooks/1234567890123/%s/messages/@original", INTERACTION_TOKEN
    )
    logging.getLogger("discord.state").debug("event %s", {"id": "1", "token": INTERACTION_TOKEN, "type": 2})
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 5
    assert "'token': '[redacted]'" in json.loads(lines[4])["message"]
    records = [json.loads(line) for line in lines]
    assert "[redacted]" in records[0]["message"] and "Traceback" in records[0]["exception"]
    assert "/interactions/1234567890123/[redacted]/callback" in records[2]["message"]
    assert "/webhooks/1234567890123/[redacted]/messages" in records[3]["message"]
    for secret in (KEY, TOKEN, INTERACTION_TOKEN):
        assert secret not in "\n".join(lines)


def test_a_newline_in_a_value_cannot_forge_a_line(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    forged = "abc\n2026-01-01 00:00:00,000 ERROR bot: admin password reset\r\x1b[2J"
    setup_logging("INFO", [], "text")
    logging.getLogger("bot.adapters.image_api").info("submitted task %s", forged)
    text = capsys.readouterr().err
    assert text.count("\n") == 1
    assert "abc\\n2026-01-01" in text and "\\x1b[2J" in text

    setup_logging("INFO", [], "json")
    with log_context(job_id=7, guild_id=123456789012345678):
        logging.getLogger("bot.adapters.image_api").info("submitted task %s", forged)
    line = capsys.readouterr().err
    assert line.count("\n") == 1
    record = json.loads(line)
    assert record["job_id"] == "7" and record["guild_id"] == "123456789012345678"
    assert record["message"].startswith("submitted task abc\\n")


def test_dotenv_values_read_as_people_expect(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        'MOUNTSEA_API_KEY="abc" # note\n'
        "export MOUNTSEA_MODEL='grok-imagine-image'  # quoted, exported\n"
        "DATABASE_PATH=data/x.db # trailing\n"
        'MOUNTSEA_BASE_URL="http://127.0.0.1:8090"\n'
        "LOG_FORMAT=json\n"
        "METRICS_PORT=9100\n"
    )
    settings = load_settings({}, env_file, require_token=False)
    assert settings.api_key.reveal() == "abc"
    assert settings.model == "grok-imagine-image"
    assert str(settings.database_path) == "data/x.db"
    assert settings.base_url == "http://127.0.0.1:8090"
    assert (settings.log_format, settings.metrics_port, settings.metrics_host) == ("json", 9100, "127.0.0.1")


def test_a_dollar_in_a_key_is_kept(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MOUNTSEA_API_KEY=ab$HOME${USER}cd\n")
    assert load_settings({}, env_file, require_token=False).api_key.reveal() == "ab$HOME${USER}cd"


def test_ids_come_from_the_context_never_from_the_message_text(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    setup_logging("INFO", [], "json")
    logging.getLogger("bot.core.runner").info(
        "job 12: task abc-123 ended (trace t-99) in guild 123456789012345678"
    )
    record = json.loads(capsys.readouterr().err)
    assert not {"job_id", "task_id", "trace_id", "guild_id"} & set(record)


async def test_a_job_s_log_lines_carry_its_ids(
    sandbox: Sandbox, db_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    setup_logging("DEBUG", [], "json")
    sink = RecordingSink()
    origin = Origin(source="test", guild_id=123456789012345678, channel_id=2, user_id=3)
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        job = await runner.enqueue(ImageRequest("a red fox"), origin)
        await sink.wait_for(1)
    task_id = next(iter(sandbox.tasks))
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    mine = [r for r in records if r["logger"].startswith("bot.core.runner")]
    assert mine and all(r.get("job_id") == str(job.id) for r in mine)
    assert all(r.get("guild_id") == "123456789012345678" for r in mine)
    trace = sandbox.tasks[task_id].trace_id
    assert any(r.get("task_id") == task_id and r.get("trace_id") == trace for r in mine)
    # The image API client's own lines about the job's task carry its ids too.
    client = [r for r in records if r["logger"] == "bot.adapters.image_api" and task_id in r["message"]]
    assert client and all(r.get("job_id") == str(job.id) for r in client)
