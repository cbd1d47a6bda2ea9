"""Configuration: validated once, one clear line and exit code 2 on any problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.ops import wiring
from bot.ops.config import ConfigError, Secret, load_settings

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB"
ROOT = Path(__file__).resolve().parents[1]


def run_bot(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "MOUNTSEA_", "DATABASE_"))}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": "nonsense"}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": TOKEN}, "MOUNTSEA_API_KEY"),
        ({"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k", "DEV_GUILD_ID": "abc"}, "DEV_GUILD_ID"),
        (
            {"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k", "MOUNTSEA_BASE_URL": "ftp://x"},
            "MOUNTSEA_BASE_URL",
        ),
        ({"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k", "JOB_TIME_LIMIT": "-5"}, "JOB_TIME_LIMIT"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    result = run_bot(env, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr


def test_missing_token_says_how_to_get_one(tmp_path: Path) -> None:
    result = run_bot({}, tmp_path)
    assert "Developer Portal" in result.stderr or "developers/applications" in result.stderr


def test_env_file_is_honoured_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"# comment\nDISCORD_TOKEN={TOKEN}\nexport MOUNTSEA_API_KEY='from-file'\nLOG_LEVEL=debug\n"
        "DATABASE_PATH=/tmp/x.db  # trailing comment\n"
    )
    settings = load_settings({"MOUNTSEA_API_KEY": "from-env"}, env_file)
    assert settings.api_key.reveal() == "from-env"
    assert settings.discord_token is not None and settings.discord_token.reveal() == TOKEN
    assert settings.log_level == "DEBUG"
    assert str(settings.database_path) == "/tmp/x.db"


def test_defaults() -> None:
    settings = load_settings({"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k"}, None)
    assert settings.base_url == "https://api.mountsea.ai"
    assert settings.model == "grok-imagine-image"
    assert str(settings.database_path) == "data/bot.db"
    assert settings.dev_guild_id is None
    assert settings.max_attachment_bytes == 10 * 1024 * 1024
    assert settings.job_time_limit == 600


def test_secrets_never_show_in_reprs() -> None:
    settings = load_settings({"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "sk-secret-value"}, None)
    assert "sk-secret-value" not in repr(settings) and TOKEN not in repr(settings)
    assert repr(Secret("abc")) == "Secret('********')"


def test_bad_env_file_line_is_reported(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MOUNTSEA_API_KEY=k\nthis line is not a setting\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_settings({}, env_file, require_token=False)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RESULT_HOSTS", "cdn.example.com, http://other.example"),
        ("RESULT_HOSTS", "cdn.example.com:99999"),
        ("MAX_RESULT_MEGAPIXELS", "500"),
        ("MAX_RESULT_MEGAPIXELS", "0"),
        ("MAX_ANSWER_MB", "-1"),
        ("DELIVERY_CONCURRENCY", "0"),
        ("DELIVERY_TIMEOUT", "soon"),
    ],
)
def test_fetch_settings_are_validated(variable: str, value: str) -> None:
    env = {"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k", variable: value}
    with pytest.raises(ConfigError) as refused:
        load_settings(env, env_file=None)
    assert refused.value.variable == variable


def test_result_hosts_and_the_api_origin_make_the_fetch_policy() -> None:
    env = {
        "DISCORD_TOKEN": TOKEN,
        "MOUNTSEA_API_KEY": "k",
        "MOUNTSEA_BASE_URL": "http://127.0.0.1:8090",
        "RESULT_HOSTS": " cdn.example.com , [::1]:9000,",
        "MAX_RESULT_MEGAPIXELS": "8.5",
        "MAX_ANSWER_MB": "2",
    }
    settings = load_settings(env, env_file=None)
    assert settings.result_hosts == ("cdn.example.com", "[::1]:9000")
    assert settings.max_result_pixels == 8_500_000 and settings.max_answer_bytes == 2 * 1024 * 1024
    policy = wiring.fetch_policy(settings)
    assert policy.allows("127.0.0.1", 8090) and policy.allows("cdn.example.com", 443)
    assert policy.allows("::1", 9000) and not policy.allows("::1", 9001)
    assert not policy.allows("127.0.0.1", 8091)


def test_database_url_is_validated_and_its_password_kept_secret(tmp_path: Path) -> None:
    base = {"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k"}
    url = "postgresql://bot:pg-pass-123@db.internal:5432/imagine"
    settings = load_settings({**base, "DATABASE_URL": url}, None)
    assert settings.database_url is not None and settings.database_url.reveal() == url
    assert "pg-pass-123" not in repr(settings)
    assert "pg-pass-123" in settings.secrets()  # so the log filter redacts it wherever it shows up
    assert load_settings({**base, "DATABASE_URL": "postgres://db/x"}, None).database_url is not None
    assert load_settings(base, None).database_url is None
    for bad in ("mysql://bot:pg-pass-123@db/x", "sqlite:///data/bot.db", "postgresql://"):
        with pytest.raises(ConfigError, match="DATABASE_URL") as caught:
            load_settings({**base, "DATABASE_URL": bad}, None)
        assert "pg-pass-123" not in str(caught.value)


def test_backup_with_postgresql_points_at_pg_dump(tmp_path: Path) -> None:
    result = run_bot(
        {"DATABASE_URL": "postgresql://bot:pg-pass-123@127.0.0.1:1/x"}, tmp_path, "backup", "b.db"
    )
    assert result.returncode == 2 and "pg_dump" in result.stderr
    assert "pg-pass-123" not in result.stderr + result.stdout


@pytest.mark.parametrize("value", ["1", "0", "-5", "soon", "nan"])
def test_job_lease_is_validated(value: str) -> None:
    env = {"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k", "JOB_LEASE_SECONDS": value}
    with pytest.raises(ConfigError) as refused:
        load_settings(env, env_file=None)
    assert refused.value.variable == "JOB_LEASE_SECONDS"
    assert load_settings({**env, "JOB_LEASE_SECONDS": "90"}, env_file=None).job_lease == 90.0
    assert load_settings({**env, "JOB_LEASE_SECONDS": ""}, env_file=None).job_lease == 60.0


# -- issue 19, item 11: misspelt names, bounds, and empty values ------------------------------------

BASE = {"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k"}


def test_a_misspelt_name_in_env_file_is_one_line_naming_the_nearest_setting(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={TOKEN}\nMOUNTSEA_API_KEY=k\nPOLL_BUGET=3\n")
    result = run_bot({}, tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "POLL_BUGET" in line and "did you mean POLL_BUDGET?" in line
    # Compose's own name in the same file is no mistake.
    (tmp_path / ".env").write_text("MOUNTSEA_API_KEY=k\nPOSTGRES_PASSWORD=s3cret\n")
    assert load_settings({}, tmp_path / ".env", require_token=False).api_key.reveal() == "k"


def test_in_the_environment_only_names_close_to_a_setting_are_flagged() -> None:
    warnings: list[str] = []
    environment = {
        **BASE,
        "POLL_BUGET": "3",  # a misspelling: warned, not fatal (the environment is shared)
        "POSTGRES_PASSWORD": "s3cret",  # compose passes it: another program's variable
        "PGDATA": "/var/lib/postgresql",
        "HOME": "/home/bot",
        "PYTHONUNBUFFERED": "1",
    }
    settings = load_settings(environment, None, warn=warnings.append)
    assert settings.poll_budget == 7.5
    [warning] = warnings
    assert "POLL_BUGET" in warning and "POLL_BUDGET" in warning and "\n" not in warning


def test_max_attachment_mb_1e9_is_refused_by_its_bounds() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({**BASE, "MAX_ATTACHMENT_MB": "1e9"}, None)
    assert refused.value.variable == "MAX_ATTACHMENT_MB"
    assert "at most 100" in str(refused.value) and "1e9" in str(refused.value)
    assert load_settings({**BASE, "MAX_ATTACHMENT_MB": "25"}, None).max_attachment_bytes == 25 * 1024 * 1024


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_exported_empty_token_does_not_hide_the_env_file_value(tmp_path: Path, empty: str) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"DISCORD_TOKEN={TOKEN}\nMOUNTSEA_API_KEY=from-file\nMETRICS_PORT=9100\n")
    settings = load_settings({"DISCORD_TOKEN": empty, "METRICS_PORT": empty}, env_file)
    assert settings.discord_token is not None and settings.discord_token.reveal() == TOKEN
    assert settings.metrics_port == 9100
    # And as the bot runs it: the exported empty token is no "is not set".
    result = run_bot({"DISCORD_TOKEN": empty, "DEV_GUILD_ID": "abc"}, tmp_path)
    assert result.returncode == 2 and "DEV_GUILD_ID" in result.stderr, result.stderr


def test_an_empty_value_anywhere_means_the_default() -> None:
    blank = dict.fromkeys(("POLL_BUDGET", "LOG_LEVEL", "SHARD_COUNT", "RESULT_HOSTS", "DATABASE_PATH"), "")
    settings = load_settings({**BASE, **blank}, None)
    assert (settings.poll_budget, settings.log_level, settings.shard_count) == (7.5, "INFO", None)
    assert settings.result_hosts == () and str(settings.database_path) == "data/bot.db"
