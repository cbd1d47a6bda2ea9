"""compose.yaml (no Docker engine here): PostgreSQL with a health check and bot processes that split the
shards between them, each accepted by the bot's own configuration check."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from dotenv import dotenv_values

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


def test_postgres_is_pinned_to_a_minor_version() -> None:
    """Issue 19, item 14: a floating `postgres:16` pulls whatever 16.x is newest at each build."""
    image = compose()["services"]["db"]["image"]
    assert re.fullmatch(r"postgres:16\.\d+(-[a-z0-9]+)?(@sha256:[0-9a-f]{64})?", image), image


# -- the environment Docker builds for a bot container (no Docker engine here) --------------------


def dockerfile_env() -> dict[str, str]:
    """The final stage's `ENV` instructions (continuation lines joined); PATH is left to the host."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final = text[text.rindex("\nFROM ") :]
    values: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            for word in shlex.split(line[4:]):
                name, _, value = word.partition("=")
                values[name] = value
    values.pop("PATH", None)
    return values


def image_dotenv() -> str:
    """What the image holds as /app/.env, the bot's working directory's .env."""
    [copy] = re.findall(r"^COPY (\S+) /app/\.env$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert re.search(r"^WORKDIR /app$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    return (ROOT / copy).read_text()


def copied_env_example(extra: str = "") -> dict[str, str]:
    """`cp .env.example .env`, the three values filled in, as compose's env_file reads it."""
    text = (ROOT / ".env.example").read_text()
    for name, value in (("DISCORD_TOKEN", TOKEN), ("MOUNTSEA_API_KEY", "k"), ("POSTGRES_PASSWORD", "s3cret")):
        text = re.sub(rf"^{name}=$", f"{name}={value}", text, flags=re.MULTILINE)
    return {k: v or "" for k, v in dotenv_values(stream=io.StringIO(text + extra)).items()}


def container_env(service: str, env_file: dict[str, str]) -> dict[str, str]:
    """The image's ENV, overridden by env_file, overridden by the service's `environment:`."""
    return dockerfile_env() | env_file | bots(compose()["services"])[service]


def healthcheck(env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command, in a directory holding the image's .env."""
    (workdir / ".env").write_text(image_dotenv())
    host = {k: os.environ[k] for k in ("PATH", "HOME", "SYSTEMROOT") if k in os.environ}
    return subprocess.run(
        [sys.executable, "-m", "bot", "healthcheck"],
        env=host | {"PYTHONPATH": str(ROOT)} | env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_containers_from_a_copied_env_example_ask_the_health_endpoint(tmp_path: Path) -> None:
    """Issue 19, item 1: with .env copied from .env.example, `python -m bot healthcheck` in each bot
    container asks /healthz on 9100 (it said "METRICS_PORT is not set": the example's empty
    METRICS_PORT= replaced the image's value). Nothing listens here, so it reports no answer."""
    for service in bots(compose()["services"]):
        result = healthcheck(container_env(service, copied_env_example()), tmp_path)
        output = result.stdout + result.stderr
        assert "http://127.0.0.1:9100/healthz" in output, (service, output)
        assert "not set" not in output and "warning" not in output, output
        assert "configuration error" not in output, output


def test_an_empty_metrics_port_in_env_leaves_the_image_s_port(tmp_path: Path) -> None:
    """Issue 19, item 1: an operator's .env written from the old example (`METRICS_PORT=`, empty)
    means "the default", which in the image is 9100."""
    env = container_env("bot-0", copied_env_example("METRICS_PORT=\nLOG_LEVEL=\n"))
    assert env["METRICS_PORT"] == ""  # compose does set it, empty, over the image's own value
    (tmp_path / ".env").write_text(image_dotenv())
    settings = load_settings(env, tmp_path / ".env")
    assert settings.metrics_port == 9100 and settings.log_level == "INFO"
    assert str(settings.database_path) == "/app/data/bot.db"
    result = healthcheck(env, tmp_path)
    assert "http://127.0.0.1:9100/healthz" in result.stdout + result.stderr


def test_an_operator_env_mounted_over_the_image_s_keeps_9100(tmp_path: Path) -> None:
    """`docker run -v $PWD/.env:/app/.env` (docs/operations.md) replaces the image's .env: its ENV
    still gives 9100, the operator's file the rest."""
    operator = tmp_path / ".env"
    operator.write_text(f"DISCORD_TOKEN={TOKEN}\nMOUNTSEA_API_KEY=k\nMETRICS_PORT=\n")
    settings = load_settings(dockerfile_env(), operator)
    assert settings.metrics_port == 9100 and str(settings.database_path) == "/app/data/bot.db"


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
