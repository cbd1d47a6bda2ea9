"""Every form of a database password stays out of what the operator sees: URL user-info, a URL's
`password=` query parameter and libpq key=value strings, through `python -m bot stats` (a real
process with a DATABASE_URL that cannot be used) and through the log filter."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from bot.core.redaction import redact
from bot.ops.logs import setup_logging
from tests.test_operations import free_port
from tests.test_ops_commands import run

PASSWORD = "hunter2-Secret"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://bot:hunter2-Secret@db:5432/bot", "postgresql://bot:***@db:5432/bot"),
        (
            "postgresql:///imagine?host=/x&user=bot&password=hunter2-Secret",
            "postgresql:///imagine?host=/x&user=bot&password=***",
        ),
        (
            "postgres://db/imagine?PASSWORD=hunter2-Secret&sslmode=off",
            "postgres://db/imagine?PASSWORD=***&sslmode=off",
        ),
        (
            "host=/x user=bot password=hunter2-Secret dbname=imagine",
            "host=/x user=bot password=*** dbname=imagine",
        ),
        ("host=/x password = 'hunter2-Secret with \\' quote' dbname=i", "host=/x password = *** dbname=i"),
    ],
)
def test_redact_knows_every_password_form(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bot:{password}@127.0.0.1:{port}/imagine",
        "postgresql:///imagine?host={socket}&user=bot&password={password}",
        "postgresql://127.0.0.1:{port}/imagine?user=bot&password={password}&connect_timeout=3",
        "host={socket} user=bot password={password} dbname=imagine",
    ],
    ids=["user-info", "query-with-socket", "query-with-host", "key-value"],
)
def test_stats_with_an_unusable_database_url_never_prints_its_password(url: str, tmp_path: Path) -> None:
    value = url.format(password=PASSWORD, port=free_port(), socket=tmp_path / "no-server")
    result = run("stats", env={"DATABASE_URL": value})
    assert result.returncode in (1, 2), result
    shown = result.stdout + result.stderr
    assert PASSWORD not in shown, shown
    assert "Traceback" not in shown and len(result.stderr.strip().splitlines()) == 1, shown


def _fail_with(text: str) -> None:
    raise OSError(text)


def test_the_log_filter_redacts_every_password_form() -> None:
    stream = io.StringIO()
    setup_logging("INFO")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = logging.getLogger("bot.test")
    log.warning("connecting to postgresql:///x?host=/y&password=%s", PASSWORD)
    log.warning("conninfo host=/y user=bot password=%s dbname=x", PASSWORD)
    try:
        _fail_with(f"failed: postgresql://bot:{PASSWORD}@db/x")
    except OSError:
        log.exception("database")
    assert PASSWORD not in stream.getvalue() and stream.getvalue().count("***") >= 3
