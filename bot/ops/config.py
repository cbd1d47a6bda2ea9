"""The bot's settings, declared once (name, type, default, bounds, help) and read from `.env` and the
environment by pydantic-settings; a bad value is one line naming the setting.

This module is a leaf: it describes values and checks them, and builds nothing. `bot/ops/wiring.py`
turns the settings into the API client, the poll schedule, the fetch policy and the runner's
configuration; `python -m bot.ops.settings_doc` writes docs/configuration.md and .env.example from
the declaration below."""

from __future__ import annotations

import difflib
import io
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from dotenv.parser import parse_stream
from pydantic import SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from bot.core.origins import parse_host_entry
from bot.ops.setting_fields import is_secret, requirement, setting, variable

DEFAULT_BASE_URL = "https://api.mountsea.ai"
DEFAULT_MODEL = "grok-imagine-image"
DISCORD_AUTHORIZE_URL = "https://discord.com/oauth2/authorize"
# The session secret is hashed into the cookie encryption key; short secrets are guessable.
MIN_SESSION_SECRET_CHARS = 32
MEGABYTE = 1024 * 1024
# Names that may stand in `.env` without being settings of the bot: compose.yaml reads them from the
# same file (the PostgreSQL password it puts into DATABASE_URL).
COMPOSE_NAMES = {"POSTGRES_PASSWORD": "compose.yaml only: the PostgreSQL password, letters and digits"}
# How alike a name in the process environment must be to a setting's name to be reported as a likely
# misspelling (other programs' variables live there too); `.env` is the bot's own, so any unknown
# name there is an error and the nearest setting is suggested from a looser match.
ENVIRONMENT_CUTOFF = 0.85
SUGGESTION_CUTOFF = 0.6


class ConfigError(Exception):
    """A missing or malformed setting; its text is the one line shown to the operator."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class SettingProblem(ValueError):
    """A check across settings failed: which setting to name, and why."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(problem)
        self.variable = variable


class Refused(ValueError):
    """A value refused with its own full explanation (other checks are worded from the declaration)."""


class Secret(SecretStr):
    """A string that never shows itself in a repr, a log line or a traceback."""

    def reveal(self) -> str:
        return self.get_secret_value()

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"


_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{20,}$")
_HTTP_URL = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")


class Settings(BaseSettings):
    """Every setting of the bot. Read with `load_settings`; constructing one directly (tests, the
    benchmarks) reads no environment at all."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,  # an empty value means "use the default", wherever it comes from
        enable_decoding=False,  # lists are comma-separated text, not JSON
        validate_by_name=True,
        validate_by_alias=True,
        validate_default=False,
        allow_inf_nan=False,
        frozen=True,
        extra="forbid",  # a misspelt keyword in code is an error too (names in .env: check_names)
    )

    # -- Required -------------------------------------------------------------------------------
    discord_token: Secret | None = setting(
        None,
        "DISCORD_TOKEN",
        "The bot's token: Developer Portal → your application → Bot → Reset Token. Required to run the "
        "bot; never logged, stored or shown.",
        group="Required",
        allowed="a bot token (three dot-separated parts)",
    )
    api_key: Secret = setting(
        Secret(""),
        "MOUNTSEA_API_KEY",
        "Your Mountsea API key; never logged, stored or shown. To try the bot offline, run `make "
        "sandbox` and use `sandbox-key` with MOUNTSEA_BASE_URL=http://127.0.0.1:8090.",
        group="Required",
        allowed="the key, without spaces",
    )

    # -- Image API ------------------------------------------------------------------------------
    base_url: str = setting(
        DEFAULT_BASE_URL,
        "MOUNTSEA_BASE_URL",
        "The image API gateway (or the sandbox).",
        group="Image API",
        allowed="an http(s) URL",
    )
    model: str = setting(
        DEFAULT_MODEL, "MOUNTSEA_MODEL", "The model name sent with each request.", group="Image API"
    )
    request_timeout: float = setting(
        30.0,
        "REQUEST_TIMEOUT",
        "Timeout of one HTTP request to the image API.",
        group="Image API",
        unit="seconds",
        gt=0,
        le=600,
    )
    max_answer_mb: float = setting(
        20.0,
        "MAX_ANSWER_MB",
        "Largest answer of the image API (submit or status) the bot reads; a larger one is treated "
        "as malformed.",
        group="Image API",
        unit="megabytes",
        gt=0,
        le=100,
    )

    # -- Where the data lives -------------------------------------------------------------------
    database_path: Path = setting(
        Path("data/bot.db"), "DATABASE_PATH", "Where the SQLite database lives.", group="Data"
    )
    thumbnail_dir: Path | None = setting(
        None,
        "THUMBNAIL_DIR",
        "Where the web gallery's thumbnails (small WebP copies of posted images) live, shared by every "
        "process of a deployment (unset: a `thumbnails` folder beside DATABASE_PATH).",
        group="Data",
        see=("Web gallery", "web.md#thumbnails"),
    )
    database_url: Secret | None = setting(
        None,
        "DATABASE_URL",
        "PostgreSQL instead of the SQLite file, needed to run more than one bot process "
        "(postgresql://user:password@host:5432/database). Move existing data with "
        "`python -m bot migrate-db`. The password is never logged.",
        group="Data",
        allowed="a PostgreSQL URL",
        see=("PostgreSQL", "operations.md#postgresql"),
    )
    job_lease: float = setting(
        60.0,
        "JOB_LEASE_SECONDS",
        "With PostgreSQL: how long a process holds a job it works on (a poll, a submit, a delivery) "
        "between renewals, every quarter of it. When a process dies, the others take its jobs over "
        "within this time plus one poll interval.",
        group="Data",
        see=("Running more than one process", "operations.md#running-more-than-one-process"),
        unit="seconds",
        ge=2,
        le=3600,
    )

    # -- Discord --------------------------------------------------------------------------------
    dev_guild_id: int | None = setting(
        None,
        "DEV_GUILD_ID",
        "A server id: commands are synced to it at every start-up so they appear at once. Without "
        "it, commands are synced globally, and only when they changed.",
        group="Discord",
        allowed="a server id (a long number)",
    )
    status_update_interval: float = setting(
        3.0,
        "STATUS_UPDATE_INTERVAL",
        "Shortest time between two edits of a status message.",
        group="Discord",
        unit="seconds",
        gt=0,
        le=3600,
    )
    discord_api_base: str | None = setting(
        None,
        "DISCORD_API_BASE",
        "Discord's REST API (unset: https://discord.com/api/v10), for an API proxy (the tests point it "
        "at the fake Discord); the gateway address is asked from it.",
        group="Discord",
        allowed="an http(s) URL like https://discord.com/api/v10",
    )

    # -- Quotas ---------------------------------------------------------------------------------
    default_daily_quota: int = setting(
        10,
        "DEFAULT_DAILY_QUOTA",
        "Images per member per day in each server, unless the server sets its own with "
        "/imagine-admin quota default; 0 turns the bot off until a server sets a limit.",
        group="Quotas and limits",
        ge=0,
        le=1000,
    )
    default_personal_quota: int = setting(
        5,
        "DEFAULT_PERSONAL_QUOTA",
        "Personal use (the app installed to a person's account, used in DMs, group DMs and servers "
        "without the bot): images per person per UTC day across all those places; 0 turns personal "
        "use off.",
        group="Quotas and limits",
        see=("Personal use", "moderation.md#personal-use-quota-and-bans"),
        ge=0,
        le=1000,
    )
    max_attachment_mb: float = setting(
        10.0,
        "MAX_ATTACHMENT_MB",
        "Largest reference image a member may attach.",
        group="Quotas and limits",
        unit="megabytes",
        gt=0,
        le=100,
    )

    # -- Polling --------------------------------------------------------------------------------
    poll_first_delay: float = setting(
        3.0,
        "POLL_FIRST_DELAY",
        "Wait before the first poll of a task when there is no history yet.",
        group="Polling the image API",
        unit="seconds",
        gt=0,
        le=3600,
    )
    poll_budget: float = setting(
        7.5,
        "POLL_BUDGET",
        "Status polls per task the adaptive schedule aims for: fewer means less load on the API but a "
        "finished image waits longer for the poll that finds it.",
        group="Polling the image API",
        see=("Performance", "performance.md#why-the-overhead-target-is-missed"),
        unit="polls per task",
        ge=1,
        le=1000,
    )
    poll_min_interval: float = setting(
        1.0,
        "POLL_MIN_INTERVAL",
        "Shortest wait between two polls of one task (at most POLL_MAX_INTERVAL).",
        group="Polling the image API",
        unit="seconds",
        gt=0,
        le=3600,
    )
    poll_max_interval: float = setting(
        15.0,
        "POLL_MAX_INTERVAL",
        "Longest wait between two polls of one task; also the cap of the backoff after poll errors and "
        "of the gap between outage probes. Only the first poll of a task may come later, when no "
        "recent task of its kind finished that early.",
        group="Polling the image API",
        unit="seconds",
        gt=0,
        le=3600,
    )
    poll_concurrency: int = setting(
        64,
        "POLL_CONCURRENCY",
        "How many status polls may be in flight at once, per process. A process makes at most this many"
        " divided by a poll's round trip polls a second (docs/performance.md, Capacity).",
        group="Polling the image API",
        ge=1,
        le=1000,
    )
    job_time_limit: float = setting(
        600.0,
        "JOB_TIME_LIMIT",
        "Time after which the bot gives up on a task and tells the member. Time the image service was "
        "down (an outage) does not count.",
        group="Polling the image API",
        unit="seconds",
        gt=0,
        le=86400,
    )
    outage_queue_limit: float = setting(
        300.0,
        "OUTAGE_QUEUE_LIMIT",
        "While the image service is down, new requests wait for it this long, then end with a message "
        "and are not counted against the quota.",
        group="Polling the image API",
        unit="seconds",
        ge=0,
        le=86400,
    )

    # -- Results --------------------------------------------------------------------------------
    max_result_mb: float = setting(
        50.0,
        "MAX_RESULT_MB",
        "Largest result image the bot downloads.",
        group="Fetching results",
        unit="megabytes",
        gt=0,
        le=500,
    )
    max_result_megapixels: float = setting(
        16.0,
        "MAX_RESULT_MEGAPIXELS",
        "Largest result image the bot decodes. A larger JPEG is scaled down while decoding; a larger "
        "PNG, WebP or GIF is refused with a message to the member.",
        group="Fetching results",
        see=("Hostile input", "security.md#memory-bounds"),
        unit="megapixels",
        gt=0,
        le=100,  # bot/adapters/media.py's PIXEL_CEILING (tests/test_settings_declaration.py checks it)
    )
    result_hosts: tuple[str, ...] = setting(
        (),
        "RESULT_HOSTS",
        "Result images are downloaded only from public addresses (and the image API's own origin). "
        "Hosts listed here (`host` or `host:port`, e.g. minio.internal:9000) are allowed too, even on "
        "internal addresses.",
        group="Fetching results",
        allowed="host names or addresses, optionally with :port, separated by commas",
    )
    delivery_concurrency: int = setting(
        8,
        "DELIVERY_CONCURRENCY",
        "Finished jobs delivered (downloaded and uploaded) at once, apart from the status polls.",
        group="Fetching results",
        ge=1,
        le=256,
    )
    delivery_timeout: float = setting(
        120.0,
        "DELIVERY_TIMEOUT",
        "Time all of one job's downloads together may take; what has not arrived by then is given up.",
        group="Fetching results",
        unit="seconds",
        gt=0,
        le=3600,
    )

    # -- Operators ------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = setting(
        "INFO",
        "LOG_LEVEL",
        "How much the bot logs; DEBUG shows every poll and its trace id.",
        group="Operations",
    )
    log_format: Literal["text", "json"] = setting(
        "text",
        "LOG_FORMAT",
        "text, or json: one JSON object per line with time, level, logger, message and, where known, "
        "job_id, task_id, trace_id and guild_id.",
        group="Operations",
    )
    metrics_port: int | None = setting(
        None,
        "METRICS_PORT",
        "Serve /healthz and /metrics on this port (unset: off). The Docker image sets 9100.",
        group="Operations",
        see=("Health and metrics", "operations.md#health-and-metrics"),
        unit="port",
        ge=1,
        le=65535,
    )
    metrics_host: str = setting(
        "127.0.0.1",
        "METRICS_HOST",
        "Address of that endpoint; 0.0.0.0 lets another host (Prometheus) reach it.",
        group="Operations",
    )

    # -- Several processes ----------------------------------------------------------------------
    shard_count: int | None = setting(
        None,
        "SHARD_COUNT",
        "The number of Discord shards of all processes together (unset: this one process runs every "
        "shard Discord recommends).",
        group="Several processes",
        see=("Running more than one process", "operations.md#running-more-than-one-process"),
        ge=1,
    )
    shard_ids: tuple[int, ...] | None = setting(
        None,
        "SHARD_IDS",
        "The shards this process runs, e.g. 0,1 or 0-3 (needs SHARD_COUNT; unset with SHARD_COUNT: "
        "all of them). Only the process with shard 0 syncs the commands.",
        group="Several processes",
        allowed="shard numbers such as 0,1 or a range such as 0-3, each once",
    )

    # -- The web gallery (docs/web.md): off unless WEB_PORT is set. Sign-in is Discord's OAuth2 with
    # the application's client id and secret; WEB_SESSION_SECRET encrypts the session cookies and is
    # shared by every web process of a deployment.
    web_port: int | None = setting(
        None,
        "WEB_PORT",
        "Port of the web gallery (members' own images behind Discord sign-in); unset: no gallery. "
        "Needs WEB_SESSION_SECRET, DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET.",
        group="Web gallery",
        see=("Web gallery", "web.md"),
        ge=1,
        le=65535,
    )
    web_host: str = setting(
        "127.0.0.1",
        "WEB_HOST",
        "Address the web gallery listens on; put a reverse proxy with HTTPS in front of it.",
        group="Web gallery",
    )
    public_url: str | None = setting(
        None,
        "PUBLIC_URL",
        "The address people open the gallery at, behind the reverse proxy (unset: "
        "http://WEB_HOST:WEB_PORT); Discord sends signed-in members back to PUBLIC_URL/oauth/callback.",
        group="Web gallery",
        allowed="an http(s) URL like https://img.example.org",
    )
    web_session_secret: Secret | None = setting(
        None,
        "WEB_SESSION_SECRET",
        f"Encrypts the gallery's sign-in cookies; at least {MIN_SESSION_SECRET_CHARS} random characters, "
        "the same for every web process (python -c 'import secrets; print(secrets.token_urlsafe(32))'). "
        "Never logged, stored or shown.",
        group="Web gallery",
        allowed=f"at least {MIN_SESSION_SECRET_CHARS} characters",
    )
    discord_client_id: int | None = setting(
        None,
        "DISCORD_CLIENT_ID",
        "The application's id for signing in to the gallery: Developer Portal → your application → OAuth2.",
        group="Web gallery",
        allowed="the application id (a long number)",
    )
    discord_client_secret: Secret | None = setting(
        None,
        "DISCORD_CLIENT_SECRET",
        "The application's OAuth2 client secret (same page); never logged, stored or shown.",
        group="Web gallery",
        allowed="the client secret",
    )
    discord_authorize_url: str = setting(
        DISCORD_AUTHORIZE_URL,
        "DISCORD_AUTHORIZE_URL",
        "Discord's sign-in page (the tests point it at the fake Discord).",
        group="Web gallery",
        allowed="an http(s) URL",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Built directly, settings are what the caller passes; `load_settings` adds the environment
        # and `.env` as sources of its own.
        return (init_settings,)

    # -- checks of text values (values handed in by code as typed objects are taken as they are) ----

    @field_validator("discord_token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.lower().startswith("bot "):
            value = value[4:].strip()
        if not _TOKEN_SHAPE.match(value):
            raise Refused(
                "does not look like a bot token (three dot-separated parts); copy it again from "
                "the Developer Portal (your app → Bot → Reset Token)"
            )
        return Secret(value)

    @field_validator("api_key", mode="before")
    @classmethod
    def _key(cls, value: Any) -> Any:
        if isinstance(value, str) and any(ch.isspace() for ch in value):
            raise Refused("contains whitespace; paste the key alone")
        return value

    @field_validator("base_url", "discord_api_base", "public_url", "discord_authorize_url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not _HTTP_URL.match(value):
                raise ValueError("not an http(s) URL")
            return value.rstrip("/")
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or "host=" in parts.query):
            # The value is not echoed: it may hold a password.
            raise Refused("must be a PostgreSQL URL: postgresql://user:password@host:5432/database")
        return Secret(value)

    @field_validator("dev_guild_id", "discord_client_id", mode="before")
    @classmethod
    def _snowflake(cls, value: Any) -> Any:
        if isinstance(value, str) and (not value.isdigit() or not 15 <= len(value) <= 21):
            raise ValueError("not a Discord id")
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _word(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return value.upper() if info.field_name == "log_level" else value.lower()
        return value

    @field_validator("result_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        entries = value.split(",") if isinstance(value, str) else list(value)
        entries = [entry.strip() for entry in entries if entry.strip()]
        for entry in entries:
            parse_host_entry(entry)  # raises ValueError on a malformed entry
        return tuple(entries)

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shards(cls, value: Any) -> Any:
        """`0,2,5` or ranges such as `0-3`; each shard once."""
        if not isinstance(value, str):
            return value
        ids: list[int] = []
        for part in (p.strip() for p in value.split(",")):
            low, dash, high = part.partition("-")
            if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
                raise ValueError("not shard numbers")
            first, last = int(low), int(high) if dash else int(low)
            if last < first:
                raise ValueError(f"the range {part} runs backwards")
            ids.extend(range(first, last + 1))
        if len(set(ids)) != len(ids):
            raise ValueError("a shard is listed twice")
        return tuple(sorted(ids))

    @model_validator(mode="after")
    def _together(self) -> Settings:
        if self.poll_min_interval > self.poll_max_interval:
            raise SettingProblem("POLL_MIN_INTERVAL", "must not be larger than POLL_MAX_INTERVAL")
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise SettingProblem(
                    "SHARD_IDS", "needs SHARD_COUNT, the number of shards of all processes together"
                )
            if (top := max(self.shard_ids)) >= self.shard_count:
                raise SettingProblem(
                    "SHARD_IDS",
                    f"shard {top} does not exist with SHARD_COUNT={self.shard_count} "
                    f"(shards are numbered 0 to {self.shard_count - 1})",
                )
        if self.web_port is not None:
            self._check_web()
        return self

    def _check_web(self) -> None:
        """The web gallery needs its sign-in settings once WEB_PORT turns it on."""
        secret = self.web_session_secret
        if secret is None or len(secret.reveal()) < MIN_SESSION_SECRET_CHARS:
            raise SettingProblem(
                "WEB_SESSION_SECRET",
                f"must be set to at least {MIN_SESSION_SECRET_CHARS} random characters when WEB_PORT is set"
                " (e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            )
        if self.discord_client_id is None or not self.discord_client_secret:
            raise SettingProblem(
                "DISCORD_CLIENT_ID" if self.discord_client_id is None else "DISCORD_CLIENT_SECRET",
                "is needed for signing in to the web gallery (Developer Portal: your app → OAuth2)",
            )

    # -- values in the units the code uses ------------------------------------------------------

    @property
    def max_attachment_bytes(self) -> int:
        return int(self.max_attachment_mb * MEGABYTE)

    @property
    def max_result_bytes(self) -> int:
        return int(self.max_result_mb * MEGABYTE)

    @property
    def max_answer_bytes(self) -> int:
        return int(self.max_answer_mb * MEGABYTE)

    @property
    def max_result_pixels(self) -> int:
        return int(self.max_result_megapixels * 1_000_000)

    @property
    def thumbnail_path(self) -> Path:
        """THUMBNAIL_DIR, else `thumbnails` beside the SQLite file."""
        return self.thumbnail_dir or self.database_path.parent / "thumbnails"

    @property
    def web_url(self) -> str:
        """The address people open (PUBLIC_URL, behind the operator's reverse proxy), no trailing /."""
        return self.public_url or f"http://{self.web_host}:{self.web_port}"

    @property
    def syncs_commands(self) -> bool:
        """One process syncs the application commands: the one running shard 0 (or every shard)."""
        return self.shard_ids is None or 0 in self.shard_ids

    def secrets(self) -> list[str]:
        """Every secret value, so log filters can redact them wherever they appear."""
        values = [self.api_key.reveal()]
        if self.discord_token:
            values.append(self.discord_token.reveal())
        for secret in (self.web_session_secret, self.discord_client_secret):
            if secret:
                values.append(secret.reveal())
        if self.database_url:
            password = urlsplit(self.database_url.reveal()).password
            if password:
                values.append(password)
        return [v for v in values if v]


FIELDS_BY_VARIABLE: dict[str, tuple[str, FieldInfo]] = {
    variable(field): (name, field) for name, field in Settings.model_fields.items()
}
KNOWN_NAMES = frozenset(FIELDS_BY_VARIABLE) | frozenset(COMPOSE_NAMES)


# -- reading ---------------------------------------------------------------------------------------


class Variables(EnvSettingsSource):
    """pydantic-settings' environment source over given variables (the process environment, or the
    `.env` file as read below): names as written, values stripped, an empty value meaning unset."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str]) -> None:
        self._given = {name: value.strip() for name, value in variables.items()}
        super().__init__(settings_cls, case_sensitive=True, env_ignore_empty=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name: value for name, value in self._given.items() if value}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines read by python-dotenv: quotes, `# comments` after a value and `export` work as
    in a shell. `${VAR}` is not expanded, so a key containing `$` arrives as written."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        cause = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(str(path), f"cannot read the .env file ({cause})") from None
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(str(path), f"line {binding.original.line} is not KEY=VALUE")
        if binding.key is not None:
            values[binding.key] = binding.value or ""
    return values


def _nearest(name: str, cutoff: float) -> str | None:
    found = difflib.get_close_matches(name, sorted(KNOWN_NAMES), n=1, cutoff=cutoff)
    return found[0] if found else None


def check_names(file_values: Mapping[str, str], file: Path | None, environ: Mapping[str, str]) -> list[str]:
    """Refuse a name in `.env` that is no setting (one line, naming the nearest setting); return a
    warning for each name in the environment that looks like a misspelt setting."""
    for name in file_values:
        if name not in KNOWN_NAMES:
            nearest = _nearest(name, SUGGESTION_CUTOFF)
            hint = f"; did you mean {nearest}?" if nearest else "; docs/configuration.md lists every setting"
            raise ConfigError(name, f"in {file} is not a setting of the bot{hint}")
    warnings = []
    for name in sorted(environ):
        if name not in KNOWN_NAMES and (nearest := _nearest(name, ENVIRONMENT_CUTOFF)):
            warnings.append(
                f"warning: {name} in the environment is not a setting of the bot (ignored); "
                f"did you mean {nearest}?"
            )
    return warnings


def _problem(error: Any) -> ConfigError:
    """The first validation error as the operator's one line."""
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SettingProblem):
        return ConfigError(cause.variable, str(cause))
    location = error["loc"][0] if error["loc"] else ""
    if location in FIELDS_BY_VARIABLE:
        field = FIELDS_BY_VARIABLE[location][1]
    else:
        field = Settings.model_fields[str(location)]
    env = variable(field)
    if isinstance(cause, Refused):
        return ConfigError(env, str(cause))
    problem = f"must be {requirement(field)}"
    raw = error.get("input")
    if isinstance(raw, str) and not is_secret(field):
        problem += f" (got {raw[:40]!r})"
    return ConfigError(env, problem)


def _warn(line: str) -> None:
    print(line, file=sys.stderr)


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
    *,
    require_token: bool = True,
    require_api_key: bool = True,
    warn: Callable[[str], None] = _warn,
) -> Settings:
    """The settings from the environment over `.env`, each value checked once. An empty value is the
    same as no value: the next source's, or the default. Raises ConfigError."""
    environment = dict(os.environ if environ is None else environ)
    file_values = read_env_file(env_file) if env_file is not None else {}
    for line in check_names(file_values, env_file, environment):
        warn(line)
    sources = (Variables(Settings, environment), Variables(Settings, file_values))
    try:
        # pydantic-settings' documented way to build from sources made here (not a typed parameter).
        settings = Settings(_build_sources=(sources, {}))  # type: ignore[call-arg]
    except ValidationError as error:
        raise _problem(error.errors()[0]) from None
    except SettingProblem as problem:
        raise ConfigError(problem.variable, str(problem)) from None
    if require_token and settings.discord_token is None:
        raise ConfigError(
            "DISCORD_TOKEN",
            "is not set; create a bot at https://discord.com/developers/applications "
            "(your app → Bot → Reset Token) and put the token in the environment or .env",
        )
    if require_api_key and not settings.api_key:
        raise ConfigError(
            "MOUNTSEA_API_KEY",
            "is not set; put your Mountsea API key in the environment or .env "
            "(or run `python -m bot sandbox` and use its key to try the bot offline)",
        )
    return settings
