"""Settings from the environment (and a `.env` file), validated once at start-up."""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
from dotenv.parser import parse_stream

from bot.adapters.image_api import ImageApi
from bot.adapters.media import PIXEL_CEILING
from bot.adapters.safe_fetch import FetchPolicy, parse_host_entry
from bot.core.schedule import PollSchedule

DEFAULT_BASE_URL = "https://api.mountsea.ai"
DEFAULT_MODEL = "grok-imagine-image"
DISCORD_AUTHORIZE_URL = "https://discord.com/oauth2/authorize"
# The session secret is hashed into the cookie encryption key; short secrets are guessable.
MIN_SESSION_SECRET_CHARS = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")

T = TypeVar("T")


class ConfigError(Exception):
    """A missing or malformed setting; its text is the one line shown to the operator."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    discord_token: Secret | None
    api_key: Secret
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    database_path: Path = Path("data/bot.db")
    # PostgreSQL instead of the SQLite file, for more than one process (README: "Where the data lives").
    database_url: Secret | None = None
    # How long a process holds a job it works on between renewals; a process that dies lets its jobs
    # go after this long (README: "Running more than one process").
    job_lease: float = 60.0
    dev_guild_id: int | None = None
    log_level: str = "INFO"
    # Tuning knobs: every one is documented in .env.example and the README.
    poll_min_interval: float = 1.0
    poll_max_interval: float = 15.0
    poll_first_delay: float = 3.0
    poll_budget: float = 7.5
    job_time_limit: float = 600.0
    poll_concurrency: int = 16
    outage_queue_limit: float = 300.0
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_result_bytes: int = 50 * 1024 * 1024
    request_timeout: float = 30.0
    status_update_interval: float = 3.0
    default_daily_quota: int = 10
    # Personal use (the app installed to a person's account): images per person per UTC day across every
    # DM, group DM and server without the bot; 0 turns personal use off.
    default_personal_quota: int = 5
    # What the bot fetches and how much memory that may take (README: "What the bot fetches").
    result_hosts: tuple[str, ...] = ()
    delivery_concurrency: int = 8
    delivery_timeout: float = 120.0
    max_result_pixels: int = 16_000_000
    max_answer_bytes: int = 20 * 1024 * 1024

    def image_api(self, session: aiohttp.ClientSession) -> ImageApi:
        """The image API client these settings describe, on the process's one session."""
        return ImageApi(
            session,
            self.base_url,
            self.api_key.reveal(),
            self.model,
            timeout=self.request_timeout,
            max_answer_bytes=self.max_answer_bytes,
        )

    def fetch_policy(self) -> FetchPolicy:
        """The image API's origin and RESULT_HOSTS may be fetched from; everything else must be public."""
        return FetchPolicy.build(self.base_url, self.result_hosts)

    # Operators: logs, the health/metrics endpoint, and where Discord's API lives (tests, proxies).
    log_format: str = "text"
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    discord_api_base: str | None = None
    # Discord shards this process runs (README: "Running more than one process"). None: every shard
    # Discord recommends, in this one process.
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    # The web gallery (docs/web.md): off unless WEB_PORT is set. Sign-in is Discord's OAuth2 with the
    # application's client id and secret; WEB_SESSION_SECRET encrypts the session cookies and is shared
    # by every web process of a deployment.
    web_port: int | None = None
    web_host: str = "127.0.0.1"
    public_url: str | None = None
    web_session_secret: Secret | None = None
    discord_client_id: int | None = None
    discord_client_secret: Secret | None = None
    discord_authorize_url: str = DISCORD_AUTHORIZE_URL

    @property
    def web_url(self) -> str:
        """The address people open (PUBLIC_URL, behind the operator's reverse proxy), no trailing /."""
        return self.public_url or f"http://{self.web_host}:{self.web_port}"

    @property
    def syncs_commands(self) -> bool:
        """One process syncs the application commands: the one running shard 0 (or every shard)."""
        return self.shard_ids is None or 0 in self.shard_ids

    def poll_schedule(self) -> PollSchedule:
        return PollSchedule(
            min_interval=self.poll_min_interval,
            max_interval=self.poll_max_interval,
            first_poll=self.poll_first_delay,
            poll_budget=self.poll_budget,
        )

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


_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{20,}$")


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
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


def _parse(env: Mapping[str, str], name: str, convert: Callable[[str], T], default: T, problem: str) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return convert(raw)
    except ValueError:
        raise ConfigError(name, f"{problem} (got {raw[:40]!r})") from None


N = TypeVar("N", int, float)


def _at_least(convert: Callable[[str], N], low: N, *, above: bool = False) -> Callable[[str], N]:
    """A parser for finite numbers of at least `low` (or above it): raises ValueError otherwise."""

    def parse(raw: str) -> N:
        value = convert(raw)
        if not math.isfinite(value) or value < low or (above and value == low):
            raise ValueError(raw)
        return value

    return parse


_positive_float = _at_least(float, 0.0, above=True)
_at_least_one = _at_least(float, 1.0)
_positive_int = _at_least(int, 1)
_non_negative_int = _at_least(int, 0)


def _database_url(raw: str) -> Secret:
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or "host=" in parts.query):
        raise ValueError("not a PostgreSQL URL")
    return Secret(raw)


def _database_url_from(env: Mapping[str, str]) -> Secret | None:
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        return None
    try:
        return _database_url(raw)
    except ValueError:
        # The value is not echoed: it may hold a password.
        raise ConfigError(
            "DATABASE_URL", "must be a PostgreSQL URL: postgresql://user:password@host:5432/database"
        ) from None


def _snowflake(raw: str) -> int:
    if not raw.isdigit() or not 15 <= len(raw) <= 21:
        raise ValueError(raw)
    return int(raw)


def _port(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(raw)
    return int(raw)


def _base_url(raw: str) -> str:
    if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", raw):
        raise ValueError(raw)
    return raw.rstrip("/")


def _host_list(raw: str) -> tuple[str, ...]:
    entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
    for entry in entries:
        parse_host_entry(entry)  # raises ValueError on a malformed entry
    return entries


def _shard_ids(raw: str) -> tuple[int, ...]:
    """`0,2,5` or ranges such as `0-3`; each shard once."""
    ids: list[int] = []
    for part in (p.strip() for p in raw.split(",")):
        low, dash, high = part.partition("-")
        if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
            raise ValueError(raw)
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(raw)
        ids.extend(range(first, last + 1))
    if len(set(ids)) != len(ids):
        raise ValueError(raw)
    return tuple(sorted(ids))


def _megapixels(raw: str) -> int:
    pixels = int(_positive_float(raw) * 1_000_000)
    if pixels > PIXEL_CEILING:
        raise ValueError(raw)
    return pixels


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    raw = env.get(name, "").strip()
    return Secret(raw) if raw else None


def _check_web(settings: Settings) -> None:
    """The web gallery needs its sign-in settings once WEB_PORT turns it on."""
    secret = settings.web_session_secret
    if secret is None or len(secret.reveal()) < MIN_SESSION_SECRET_CHARS:
        raise ConfigError(
            "WEB_SESSION_SECRET",
            f"must be set to at least {MIN_SESSION_SECRET_CHARS} random characters when WEB_PORT is set"
            " (e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))')",
        )
    if settings.discord_client_id is None or not settings.discord_client_secret:
        raise ConfigError(
            "DISCORD_CLIENT_ID" if settings.discord_client_id is None else "DISCORD_CLIENT_SECRET",
            "is needed for signing in to the web gallery (Developer Portal: your app → OAuth2)",
        )


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
    *,
    require_token: bool = True,
    require_api_key: bool = True,
) -> Settings:
    """Merge `.env` under the real environment and validate every value once."""
    env: dict[str, str] = {}
    if env_file is not None:
        env.update(read_env_file(env_file))
    env.update(os.environ if environ is None else environ)

    token_raw = env.get("DISCORD_TOKEN", "").strip()
    token: Secret | None = None
    if require_token and not token_raw:
        raise ConfigError(
            "DISCORD_TOKEN",
            "is not set; create a bot at https://discord.com/developers/applications "
            "(your app → Bot → Reset Token) and put the token in the environment or .env",
        )
    if token_raw:
        if token_raw.lower().startswith("bot "):
            token_raw = token_raw[4:].strip()
        if not _TOKEN_SHAPE.match(token_raw):
            raise ConfigError(
                "DISCORD_TOKEN",
                "does not look like a bot token (three dot-separated parts); copy it again from "
                "the Developer Portal (your app → Bot → Reset Token)",
            )
        token = Secret(token_raw)

    key_raw = env.get("MOUNTSEA_API_KEY", "").strip()
    if require_api_key and not key_raw:
        raise ConfigError(
            "MOUNTSEA_API_KEY",
            "is not set; put your Mountsea API key in the environment or .env "
            "(or run `python -m bot sandbox` and use its key to try the bot offline)",
        )
    if any(ch.isspace() for ch in key_raw):
        raise ConfigError("MOUNTSEA_API_KEY", "contains whitespace; paste the key alone")

    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)} (got {log_level[:20]!r})")

    log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in LOG_FORMATS:
        raise ConfigError("LOG_FORMAT", f"must be text or json (got {log_format[:20]!r})")

    model = env.get("MOUNTSEA_MODEL", "").strip() or DEFAULT_MODEL
    database = env.get("DATABASE_PATH", "").strip() or "data/bot.db"

    settings = Settings(
        discord_token=token,
        api_key=Secret(key_raw),
        base_url=_parse(env, "MOUNTSEA_BASE_URL", _base_url, DEFAULT_BASE_URL, "must be an http(s) URL"),
        model=model,
        database_path=Path(database),
        database_url=_database_url_from(env),
        job_lease=_parse(
            env, "JOB_LEASE_SECONDS", _at_least(float, 2.0), 60.0, "must be a number of seconds, 2 or more"
        ),
        dev_guild_id=_parse(env, "DEV_GUILD_ID", _snowflake, None, "must be a server id (a long number)"),
        log_level=log_level,
        poll_min_interval=_parse(
            env, "POLL_MIN_INTERVAL", _positive_float, 1.0, "must be a positive number of seconds"
        ),
        poll_max_interval=_parse(
            env, "POLL_MAX_INTERVAL", _positive_float, 15.0, "must be a positive number of seconds"
        ),
        poll_first_delay=_parse(
            env, "POLL_FIRST_DELAY", _positive_float, 3.0, "must be a positive number of seconds"
        ),
        poll_budget=_parse(
            env, "POLL_BUDGET", _at_least_one, 7.5, "must be a number of polls per job, 1 or more"
        ),
        job_time_limit=_parse(
            env, "JOB_TIME_LIMIT", _positive_float, 600.0, "must be a positive number of seconds"
        ),
        poll_concurrency=_parse(
            env, "POLL_CONCURRENCY", _positive_int, 16, "must be a positive whole number"
        ),
        outage_queue_limit=_parse(
            env, "OUTAGE_QUEUE_LIMIT", _at_least(float, 0.0), 300.0, "must be a number of seconds, 0 or more"
        ),
        max_attachment_bytes=_parse(
            env,
            "MAX_ATTACHMENT_MB",
            lambda raw: int(_positive_float(raw) * 1024 * 1024),
            10 * 1024 * 1024,
            "must be a positive number of megabytes",
        ),
        max_result_bytes=_parse(
            env,
            "MAX_RESULT_MB",
            lambda raw: int(_positive_float(raw) * 1024 * 1024),
            50 * 1024 * 1024,
            "must be a positive number of megabytes",
        ),
        request_timeout=_parse(
            env, "REQUEST_TIMEOUT", _positive_float, 30.0, "must be a positive number of seconds"
        ),
        default_daily_quota=_parse(
            env, "DEFAULT_DAILY_QUOTA", _non_negative_int, 10, "must be a whole number, 0 or more"
        ),
        default_personal_quota=_parse(
            env, "DEFAULT_PERSONAL_QUOTA", _non_negative_int, 5, "must be a whole number, 0 or more"
        ),
        status_update_interval=_parse(
            env, "STATUS_UPDATE_INTERVAL", _positive_float, 3.0, "must be a positive number of seconds"
        ),
        result_hosts=_parse(
            env,
            "RESULT_HOSTS",
            _host_list,
            (),
            "must be host names or addresses, optionally with :port, separated by commas",
        ),
        delivery_concurrency=_parse(
            env, "DELIVERY_CONCURRENCY", _positive_int, 8, "must be a positive whole number"
        ),
        delivery_timeout=_parse(
            env, "DELIVERY_TIMEOUT", _positive_float, 120.0, "must be a positive number of seconds"
        ),
        max_result_pixels=_parse(
            env,
            "MAX_RESULT_MEGAPIXELS",
            _megapixels,
            16_000_000,
            f"must be a positive number of megapixels, at most {PIXEL_CEILING // 1_000_000}",
        ),
        max_answer_bytes=_parse(
            env,
            "MAX_ANSWER_MB",
            lambda raw: int(_positive_float(raw) * 1024 * 1024),
            20 * 1024 * 1024,
            "must be a positive number of megabytes",
        ),
        log_format=log_format,
        metrics_port=_parse(env, "METRICS_PORT", _port, None, "must be a port number from 1 to 65535"),
        metrics_host=env.get("METRICS_HOST", "").strip() or "127.0.0.1",
        discord_api_base=_parse(
            env,
            "DISCORD_API_BASE",
            _base_url,
            None,
            "must be an http(s) URL like https://discord.com/api/v10",
        ),
        shard_count=_parse(env, "SHARD_COUNT", _positive_int, None, "must be a whole number, 1 or more"),
        shard_ids=_parse(
            env,
            "SHARD_IDS",
            _shard_ids,
            None,
            "must be shard numbers such as 0,1 or a range such as 0-3, each once",
        ),
        web_port=_parse(env, "WEB_PORT", _port, None, "must be a port number from 1 to 65535"),
        web_host=env.get("WEB_HOST", "").strip() or "127.0.0.1",
        public_url=_parse(
            env, "PUBLIC_URL", _base_url, None, "must be an http(s) URL like https://img.example.org"
        ),
        web_session_secret=_secret(env, "WEB_SESSION_SECRET"),
        discord_client_id=_parse(
            env, "DISCORD_CLIENT_ID", _snowflake, None, "must be the application id (a long number)"
        ),
        discord_client_secret=_secret(env, "DISCORD_CLIENT_SECRET"),
        discord_authorize_url=_parse(
            env, "DISCORD_AUTHORIZE_URL", _base_url, DISCORD_AUTHORIZE_URL, "must be an http(s) URL"
        ),
    )
    if settings.web_port is not None:
        _check_web(settings)
    if settings.poll_min_interval > settings.poll_max_interval:
        raise ConfigError("POLL_MIN_INTERVAL", "must not be larger than POLL_MAX_INTERVAL")
    if settings.shard_ids is not None:
        if settings.shard_count is None:
            raise ConfigError(
                "SHARD_IDS", "needs SHARD_COUNT, the number of shards of all processes together"
            )
        if (top := max(settings.shard_ids)) >= settings.shard_count:
            raise ConfigError(
                "SHARD_IDS",
                f"shard {top} does not exist with SHARD_COUNT={settings.shard_count} "
                f"(shards are numbered 0 to {settings.shard_count - 1})",
            )
    return settings
