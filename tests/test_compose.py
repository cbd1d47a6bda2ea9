"""compose.yaml (no Docker engine here): PostgreSQL with a health check and bot processes that split the
shards between them, each accepted by the bot's own configuration check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.ops.config import load_settings
from tests.test_config import TOKEN

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def interpolate(value: str) -> str:
    """Compose's `${NAME:?message}` with NAME set, as `docker compose` does from .env."""
    return re.sub(r"\$\{(\w+)(:\?[^}]*)?\}", lambda m: {"POSTGRES_PASSWORD": "s3cret"}[m.group(1)], value)


def bots(services: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every service running the bot, and its environment."""
    return {
        name: {k: interpolate(str(v)) for k, v in service.get("environment", {}).items()}
        for name, service in services.items()
        if service.get("build") == "."
    }


def test_postgres_16_keeps_its_data_in_a_named_volume_and_has_a_health_check() -> None:
    data = compose()
    db = data["services"]["db"]
    assert db["image"].startswith("postgres:16")
    [mount] = db["volumes"]
    volume, target = mount.split(":")
    assert target == "/var/lib/postgresql/data" and volume in data["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["restart"] == "unless-stopped"


def test_the_bot_processes_split_the_shards_and_share_the_database() -> None:
    data = compose()
    services = data["services"]
    found = bots(services)
    assert len(found) >= 2
    counts, covered, syncing = set(), [], []
    for name, environment in found.items():
        service = services[name]
        assert service["depends_on"]["db"]["condition"] == "service_healthy", name
        assert service["restart"] == "unless-stopped" and service["env_file"] == ".env", name
        assert "healthcheck" not in service  # the image's own HEALTHCHECK applies
        url = urlsplit(environment["DATABASE_URL"])
        assert url.scheme == "postgresql" and url.hostname == "db" and url.path == "/imagine", name
        assert url.username == services["db"]["environment"]["POSTGRES_USER"]
        # The bot itself accepts the shard settings (the same check as at start-up).
        env = {"DISCORD_TOKEN": TOKEN, "MOUNTSEA_API_KEY": "k"} | environment
        settings = load_settings(env, env_file=None)
        assert settings.shard_count is not None and settings.shard_ids is not None
        counts.add(settings.shard_count)
        covered.extend(settings.shard_ids)
        if settings.syncs_commands:
            syncing.append(name)
    [count] = counts  # every process agrees on the number of shards
    assert sorted(covered) == list(range(count))  # each shard run by exactly one process
    assert len(syncing) == 1  # one process syncs the commands


def test_the_web_gallery_runs_alone_on_the_shared_database() -> None:
    services = compose()["services"]
    web = services["web"]
    assert web["command"] == ["python", "-m", "bot", "web"]
    assert web["image"] == services["bot-0"]["image"] and web["env_file"] == ".env"
    environment = {k: interpolate(str(v)) for k, v in web["environment"].items()}
    assert environment["DATABASE_URL"] == bots(services)["bot-0"]["DATABASE_URL"]
    secrets = {
        "WEB_SESSION_SECRET": "s" * 40,
        "DISCORD_CLIENT_ID": "123456789012345678",
        "DISCORD_CLIENT_SECRET": "c",
        "PUBLIC_URL": "https://img.example.org",
    }
    settings = load_settings(environment | secrets, env_file=None, require_token=False, require_api_key=False)
    assert settings.web_port == 8080 and settings.database_url is not None
    assert [f"127.0.0.1:{settings.web_port}:{settings.web_port}"] == web["ports"]
    for name, bot in bots(services).items():
        assert "WEB_PORT" not in bot, name  # the gallery runs once, here
