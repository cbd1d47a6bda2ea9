"""Failure reasons stored in English by earlier versions become texts when the database is taken over
(revision 0012), on both backends: they then read in the reader's language, their English (logs, the
terminal) is what was stored, and the image service's own words stay exactly as they were."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from bot.adapters.store import Store
from bot.core.texts import Text, Verbatim, from_stored, render
from tests.legacy_fixtures import postgresql_legacy, sqlite_legacy

FAILED = "The image service could not make this image: NSFW content detected"
CANCELLED = "Cancelled by a moderator."
API_WORDS = "Upstream said: quota exceeded for project 42"
REASONS = {1: FAILED, 2: CANCELLED}  # job id -> the English an earlier version stored


def check_reasons(errors: dict[int, str]) -> None:
    failed, cancelled = from_stored(errors[1]), from_stored(errors[2])
    assert isinstance(failed, Text) and isinstance(cancelled, Text)
    assert render("zh-CN", failed) == "图像服务无法生成这张图片：NSFW content detected"
    assert render("zh-CN", cancelled) == "已被版主取消。"
    assert (failed.english(), cancelled.english()) == (FAILED, CANCELLED)  # logs and exports unchanged


async def test_sqlite_reasons_become_texts_and_outside_words_stay(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    sqlite_legacy(path, 10)
    with sqlite3.connect(path) as conn:
        for job_id, reason in REASONS.items():
            conn.execute("UPDATE jobs SET error = ? WHERE id = ?", (reason, job_id))
        # A third job whose reason is the image service's own words: a copy of job 1 under id 3.
        conn.execute("CREATE TEMP TABLE copied AS SELECT * FROM jobs WHERE id = 1")
        conn.execute("UPDATE copied SET id = 3, error = ?", (API_WORDS,))
        conn.execute("INSERT INTO jobs SELECT * FROM copied")
    store = await Store.open(path)
    await store.close()
    with sqlite3.connect(path) as conn:
        errors = dict(conn.execute("SELECT id, error FROM jobs").fetchall())
    check_reasons(errors)
    assert errors[3] == API_WORDS and from_stored(errors[3]) == Verbatim(API_WORDS)


async def test_postgresql_reasons_become_texts_and_outside_words_stay(pg_url: str) -> None:
    postgresql_legacy(pg_url, 5)
    with psycopg.connect(pg_url) as conn:
        for job_id, reason in REASONS.items():
            conn.execute("UPDATE jobs SET error = %s WHERE id = %s", (reason, job_id))
    store = await Store.open_url(pg_url, pool_size=1)
    await store.close()
    with psycopg.connect(pg_url) as conn:
        errors = {int(k): str(v) for k, v in conn.execute("SELECT id, error FROM jobs").fetchall()}
    check_reasons(errors)
