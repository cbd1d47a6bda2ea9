"""SHARD_COUNT and SHARD_IDS: which Discord shards a process runs, validated once at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.ops.config import ConfigError, Settings, load_settings
from tests.test_config import TOKEN, run_bot

BASE = {"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k"}


def settings(**env: str) -> Settings:
    return load_settings({**BASE, **env}, env_file=None)


def test_without_shard_settings_one_process_runs_every_shard_and_syncs() -> None:
    s = settings()
    assert s.shard_count is None and s.shard_ids is None
    assert s.syncs_commands


@pytest.mark.parametrize(
    ("count", "ids", "expected"),
    [
        ("2", "", None),
        ("2", "1", (1,)),
        ("4", "3, 1", (1, 3)),
        ("8", "0-3", (0, 1, 2, 3)),
        ("8", "6,0-1", (0, 1, 6)),
    ],
)
def test_shard_ids_lists_and_ranges(count: str, ids: str, expected: tuple[int, ...] | None) -> None:
    s = settings(SHARD_COUNT=count, SHARD_IDS=ids)
    assert s.shard_count == int(count)
    assert s.shard_ids == expected


def test_only_the_process_with_shard_0_syncs_commands() -> None:
    assert settings(SHARD_COUNT="2", SHARD_IDS="0").syncs_commands
    assert not settings(SHARD_COUNT="2", SHARD_IDS="1").syncs_commands
    assert settings(SHARD_COUNT="2").syncs_commands  # both shards in this process


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT", "1 or more"),
        ({"SHARD_COUNT": "two"}, "SHARD_COUNT", "whole number"),
        ({"SHARD_IDS": "0"}, "SHARD_IDS", "needs SHARD_COUNT"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "2"}, "SHARD_IDS", "0 to 1"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0,0"}, "SHARD_IDS", "each once"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0-1,1"}, "SHARD_IDS", "each once"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "3-1"}, "SHARD_IDS", "range"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "-1"}, "SHARD_IDS", "shard numbers"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0,,1"}, "SHARD_IDS", "shard numbers"),
    ],
)
def test_bad_shard_settings_name_the_variable(env: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**env)
    assert caught.value.variable == variable
    assert words in str(caught.value)


def test_shard_ids_out_of_range_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_bot({**BASE, "SHARD_COUNT": "2", "SHARD_IDS": "0,2"}, tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "SHARD_IDS: shard 2 does not exist with SHARD_COUNT=2" in line
