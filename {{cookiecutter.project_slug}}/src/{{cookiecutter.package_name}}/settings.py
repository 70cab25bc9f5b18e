"""Service configuration.

Each setting comes, first match wins, from the environment variable named ENV_PREFIX plus the
setting's name in capitals, from a `.env` file in the working directory, or from the default
below. For example, log_level is read from
    {{ cookiecutter.package_name.upper() }}_LOG_LEVEL
Defaults are safe for local development. Only `development` is lenient: in every other
environment (staging as much as production) the values unsafe outside a laptop are refused at
startup, all of them at once, each named by its variable. `.env.example` lists every setting.
"""

import re
from functools import lru_cache
from typing import Annotated, Any, Literal
{%- if cookiecutter.messaging == "rabbitmq" %}
from urllib.parse import urlsplit
{%- endif %}

from limits import parse
from pydantic import (
    AfterValidator,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
{%- if cookiecutter.auth == "jwt" %}
from pydantic import BaseModel
{%- endif %}
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from .observability.error_tracking import SentrySettings

ENV_PREFIX = "{{ cookiecutter.package_name.upper() }}_"
{%- if cookiecutter.database != "none" %}
# The database of `make run` on a laptop: a file in the working directory (git-ignored).
DEVELOPMENT_DATABASE_URL = "sqlite+aiosqlite:///./{{ cookiecutter.package_name }}.db"
{%- if cookiecutter.database == "postgresql" %}
DATABASE_SCHEMES = ("postgresql+asyncpg://", "sqlite+aiosqlite:///")
{%- else %}
DATABASE_SCHEMES = ("sqlite+aiosqlite:///",)
{%- endif %}
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}
# The broker of `make run` on a laptop (compose.yaml's rabbitmq): RabbitMQ's own default user.
DEVELOPMENT_BROKER_URL = "amqp://guest:guest@localhost:5672/"  # nosec B105
{%- endif %}

{%- if cookiecutter.include_examples %}
CACHE_SCHEMES = ("memory://", "redis://", "rediss://")
{%- endif %}

Environment = Literal["development", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["console", "json"]
CommaSeparated = Annotated[list[str], NoDecode]
Networks = Annotated[list[IPvAnyNetwork], NoDecode]


def rate_limit_text(value: str) -> str:
    parse(value)  # raises ValueError naming the bad limit
    return value


# A limit such as "100/minute" or "5 per second" (the `limits` library's notation).
RateLimit = Annotated[str, AfterValidator(rate_limit_text)]
# Defaults that depend on the environment, as (development, every other environment): taken
# when the setting is unset or empty.
BY_ENVIRONMENT = {
    "log_format": ("console", "json"),  # a terminal, or a log pipeline
    # Trying the API out in /docs should meet the default limit, not a stricter one.
    "rate_limit_write": ("100/minute", "10/minute"),
}
{%- if cookiecutter.auth == "api_key" %}
# name:sha256-hex pairs, comma-separated: the keys themselves are never stored.
KeyDigests = Annotated[dict[str, str], NoDecode]
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
{%- elif cookiecutter.auth == "jwt" %}
# Known to everyone who reads this file: fine on a laptop, refused everywhere else.
DEVELOPMENT_JWT_SECRET = "development-only-jwt-secret-change-me-0123456789"  # nosec B105


class ConfiguredUser(BaseModel):
    """A user from the settings: an argon2 hash (`make password-hash`), never the password."""

    password_hash: str = Field(pattern=r"^\$argon2(id|i|d)\$")
    scopes: list[str] = []
{%- endif %}


def by_environment(name: str, value: object, info: ValidationInfo) -> object:
    """The value given, or, when unset or empty, the default for the environment."""
    if value is None or value == "":
        development, elsewhere = BY_ENVIRONMENT[name]
        lenient = info.data.get("environment", "development") == "development"
        return development if lenient else elsewhere
    return value


class Settings(BaseSettings, SentrySettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    # Service. Keep `environment` above the other fields: their checks read it.
    service_name: str = "{{ cookiecutter.project_slug }}"
    environment: Environment = "development"
    debug: bool = False  # tracebacks in 500 responses: development only
    log_level: LogLevel = "INFO"
    # console: one readable line per record; json: one object per line (BY_ENVIRONMENT)
    log_format: LogFormat = Field(default=None, validate_default=True)

    # Server, for `python -m {{ cookiecutter.package_name }}`
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # On SIGTERM, how long in-flight requests may run before they are cancelled; then the
    # lifespan's shutdown runs. Keep it under the orchestrator's grace period, with room for that
    # shutdown (deploy/k8s/deployment.yaml: terminationGracePeriodSeconds).
    shutdown_timeout_seconds: int = Field(default=20, ge=1, le=3600)
    # Proxies (addresses or CIDRs) whose forwarding headers are believed; none by default. Only
    # the header they write is read: x-forwarded-for (nginx's $proxy_add_x_forwarded_for) or
    # forwarded (RFC 7239).
    trusted_proxies: Networks = []
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"

    # CORS: browser origins allowed to call the API; none by default.
    cors_origins: CommaSeparated = []
    cors_allow_credentials: bool = False

    # Health
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # How long a readiness answer is reused: probes from many callers run the checks once.
    readiness_cache_seconds: float = Field(default=1.0, ge=0, le=60)
{%- if cookiecutter.database == "postgresql" %}

    # Database: postgresql+asyncpg://user:password@host:5432/name. Empty: in development a
    # local SQLite file (sqlite+aiosqlite:///./file.db works too); refused everywhere else.
    database_url: SecretStr = SecretStr("")
{%- elif cookiecutter.database == "sqlite" %}

    # Database: a SQLite file, sqlite+aiosqlite:///path (one writer at a time: keep one replica).
    database_url: SecretStr = SecretStr(DEVELOPMENT_DATABASE_URL)
{%- endif %}
{%- if cookiecutter.database != "none" %}
    database_pool_size: int = Field(default=5, ge=1, le=100)  # connections kept open
    database_max_overflow: int = Field(default=10, ge=0, le=100)  # opened beyond, under load
    # Seconds to wait for a pooled connection, or to open one, before answering 503
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Seconds one statement may run before the database cancels it (a 503)
    database_statement_timeout_seconds: float = Field(default=5.0, gt=0, le=600)
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}

    # Messaging (RabbitMQ): amqp://user:password@host:5672/vhost, amqps:// for TLS. Empty: in
    # development the local broker (DEVELOPMENT_BROKER_URL); refused everywhere else.
    broker_url: SecretStr = SecretStr("")
    # Where events are published (a topic exchange) and the worker's queue on it (durable).
    broker_exchange: str = Field(
        default="{{ cookiecutter.project_slug }}.events",
        min_length=1,
    )
    broker_queue: str = Field(
        default="{{ cookiecutter.project_slug }}.worker",
        min_length=1,
    )
    # Seconds to wait for the broker's confirm of one publish (or to connect) before giving up
    broker_publish_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    broker_prefetch: int = Field(default=16, ge=1, le=1000)  # unacked messages per worker
    broker_attempts: int = Field(default=5, ge=1, le=20)  # handler runs before dead-lettering
    broker_retry_seconds: float = Field(default=1.0, gt=0, le=3600)  # first retry; doubles
    worker_metrics_port: int = Field(default=9100, ge=0, le=65535)  # the worker's; 0: none
{%- if cookiecutter.database != "none" %}
    # The outbox relay: how often it looks for unpublished events (it is also woken by every
    # commit in its own process), and how many it publishes per transaction.
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_batch_size: int = Field(default=100, ge=1, le=10_000)
{%- endif %}
{%- endif %}
{%- if cookiecutter.auth == "api_key" %}

    # Auth: API keys in X-API-Key, stored as SHA-256 digests (`make api-key` makes a new one).
    api_key_digests: KeyDigests = {}
{%- elif cookiecutter.auth == "jwt" %}

    # Auth: OAuth2 password flow issuing short-lived JWTs (HS256) signed with this secret.
    jwt_secret: SecretStr = SecretStr(DEVELOPMENT_JWT_SECRET)
    jwt_expire_minutes: int = Field(default=15, ge=1, le=1440)
    # JSON: {"alice": {"password_hash": "$argon2id$...", "scopes": ["articles:write"]}}
    jwt_users: dict[str, ConfiguredUser] = {}
{%- endif %}

    # Resilience: calls to other services (upstreams) through resilience/. These values apply to
    # every upstream; one that needs its own gets its own fields, passed in its lifespan.
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    upstream_attempt_timeout_seconds: float = Field(default=3.0, gt=0, le=300)  # one try
    upstream_deadline_seconds: float = Field(default=8.0, gt=0, le=600)  # all tries and waits
    upstream_attempts: int = Field(default=3, ge=1, le=10)
    upstream_backoff_seconds: float = Field(default=0.2, ge=0, le=60)  # doubles, jittered
    upstream_backoff_max_seconds: float = Field(default=2.0, ge=0, le=300)
    upstream_breaker_threshold: int = Field(default=5, ge=1, le=1000)
    upstream_breaker_recovery_seconds: float = Field(default=30.0, gt=0, le=3600)
    upstream_max_concurrency: int = Field(default=32, ge=1, le=1000)
    upstream_max_wait_seconds: float = Field(default=1.0, ge=0, le=60)
{%- if cookiecutter.include_examples %}
    # The example's upstream: the public Rick and Morty API, or any API shaped like it
    characters_api_url: str = Field(
        default="https://rickandmortyapi.com/api", pattern="^https?://"
    )
    # Its read-through cache (resilience/cache.py): answers kept fresh this long, and served
    # this much longer when the API fails (0: never stale).
    characters_cache_ttl_seconds: float = Field(default=60.0, ge=0, le=86_400)
    characters_cache_stale_seconds: float = Field(default=600.0, ge=0, le=604_800)
    # Where the cache keeps its answers: memory:// (per process), or redis://host:6379/0
    # (rediss:// for TLS), shared by every replica. A secret: the URL may carry a password.
    cache_url: SecretStr = SecretStr("memory://")
    # The CPU-heavy example (api/primes.py): processes in its pool (0: one thread instead, for
    # where processes cannot start, e.g. AWS Lambda), and jobs allowed to wait for one.
    cpu_workers: int = Field(default=2, ge=0, le=64)
    cpu_max_queued: int = Field(default=8, ge=0, le=1000)
{%- endif %}
{%- if cookiecutter.include_realtime %}

    # Realtime (/api/v1/realtime): bounds per client (its principal when signed in, else its
    # address as the rate limiter sees it) and in total, so a flood closes the offender only.
    realtime_max_connections_per_client: int = Field(default=5, ge=1, le=10_000)  # WebSockets
    realtime_max_streams_per_client: int = Field(default=5, ge=1, le=10_000)  # event streams
    realtime_max_subscribers: int = Field(default=1000, ge=1, le=1_000_000)  # both, all clients
    realtime_max_message_bytes: int = Field(default=4096, ge=1, le=1024 * 1024)  # UTF-8
    realtime_messages_per_second: float = Field(default=5.0, gt=0, le=1000)  # over its sockets
{%- endif %}

    # Security edge: accepted Host names ('*.example.com' matches subdomains; '*' any, refused
    # outside development; 'testserver' is the test client's), request body limit, gzip
    # threshold, HSTS max-age (sent outside development only).
    allowed_hosts: CommaSeparated = ["localhost", "127.0.0.1", "::1", "testserver"]
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    gzip_minimum_bytes: int = Field(default=1024, ge=0)
    hsts_max_age_seconds: int = Field(default=63072000, ge=0)
    # API docs (/docs, /redoc, /openapi.json): public in development; elsewhere (staging too)
    # absent unless docs_in_production, and then behind HTTP Basic auth with these credentials.
    docs_in_production: bool = False
    docs_username: SecretStr = SecretStr("")
    docs_password: SecretStr = SecretStr("")

    # Rate limiting: limits such as "100/minute" or "5 per second", counted per client.
    rate_limit_enabled: bool = True
    rate_limit_default: RateLimit = "100/minute"  # every route but health and metrics
    # Routes that create or change data (BY_ENVIRONMENT)
    rate_limit_write: RateLimit = Field(default=None, validate_default=True)
{%- if cookiecutter.rate_limit_storage == "redis" %}
    rate_limit_storage_uri: str = "redis://localhost:6379/0"  # shared by every replica
{%- else %}
    rate_limit_storage_uri: str = "memory://"  # per process; a redis:// URI shares them
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    rate_limit_sign_in: RateLimit = "5/minute"  # the token route, per client and per user name
{%- endif %}
    # Storage down: count per process in memory (true) or refuse with 503 (false).
    rate_limit_fail_open: bool = True

    # Observability: /metrics, tracing (also the standard OTEL_* variables), access log
    metrics_token: SecretStr = SecretStr("")  # empty: /metrics is open (development only)
    trace_sample_ratio: float = Field(default=0.1, ge=0, le=1)
    trace_console: bool = False
    access_log: bool = True

    @field_validator("trusted_proxies", "cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value
{%- if cookiecutter.auth == "api_key" %}

    @field_validator("api_key_digests", mode="before")
    @classmethod
    def split_name_digest_pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = [item.strip().partition(":") for item in value.split(",") if item.strip()]
        return {name.strip(): digest.strip().lower() for name, _, digest in pairs}

    @field_validator("api_key_digests")
    @classmethod
    def check_digests(cls, value: dict[str, str]) -> dict[str, str]:
        for name, digest in value.items():
            if not name or not SHA256_HEX.fullmatch(digest):
                raise ValueError(
                    "expected name:digest pairs, each digest 64 hex characters "
                    "(`make api-key` prints one); never the key itself"
                )
        return value
{%- elif cookiecutter.auth == "jwt" %}

    @field_validator("jwt_secret")
    @classmethod
    def long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (`make jwt-secret`)")
        return value
{%- endif %}

{%- if cookiecutter.database != "none" %}

    @field_validator("database_url")
    @classmethod
    def async_driver(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and not url.startswith(DATABASE_SCHEMES):
            raise ValueError(f"must start with {' or '.join(DATABASE_SCHEMES)} (an async driver)")
        return value
{%- endif %}

{%- if cookiecutter.messaging == "rabbitmq" %}

    @field_validator("broker_url")
    @classmethod
    def amqp_scheme(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and not url.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value
{%- endif %}

{%- if cookiecutter.include_examples %}

    @field_validator("cache_url")
    @classmethod
    def cache_scheme(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(CACHE_SCHEMES):
            raise ValueError("must start with memory://, redis:// or rediss://")
        return value
{%- endif %}

    @field_validator("log_level", mode="before")
    @classmethod
    def upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def log_format_by_environment(cls, value: object, info: ValidationInfo) -> object:
        return by_environment("log_format", value, info)

    @field_validator("rate_limit_write", mode="before")
    @classmethod
    def write_limit_by_environment(cls, value: object, info: ValidationInfo) -> object:
        return by_environment("rate_limit_write", value, info)

    @field_validator("cors_allow_credentials")
    @classmethod
    def refuse_credentials_for_any_origin(cls, value: bool, info: ValidationInfo) -> bool:
        if value and "*" in info.data.get("cors_origins", []):
            raise unsafe(
                f"true with {ENV_PREFIX}CORS_ORIGINS='*' lets any site act as the user: "
                "list the allowed origins"
            )
        return value

    @field_validator(
        "debug",
        "trusted_proxies",
{%- if cookiecutter.auth == "api_key" %}
        "api_key_digests",
{%- elif cookiecutter.auth == "jwt" %}
        "jwt_secret",
        "jwt_users",
{%- endif %}
        "allowed_hosts",
{%- if cookiecutter.database == "postgresql" %}
        "database_url",
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}
        "broker_url",
{%- endif %}
        "docs_username",
        "docs_password",
        "metrics_token",
    )
    @classmethod
    def refuse_unsafe_values(cls, value: Any, info: ValidationInfo) -> Any:
        """Outside development, refuse what only a laptop may use. A check per field, so that
        one start names every unsafe (and every invalid) variable at once."""
        earlier = info.data  # the fields above this one that are valid
        if earlier.get("environment", "development") == "development":
            return value
        if reason := unsafe_reason(str(info.field_name), value, earlier):
            raise unsafe(reason)
        return value


def unsafe_reason(name: str, value: Any, earlier: dict[str, Any]) -> str | None:
    """Why the value of setting `name` is unsafe outside development, or None."""
    docs = earlier.get("docs_in_production", False)
    if name == "debug" and value:
        return "must be false outside development: it shows tracebacks to every client"
    if name == "trusted_proxies" and any(network.prefixlen == 0 for network in value):
        return (
            "covers every address, so any client could choose the address it is rate limited "
            "by: list the proxies"
        )
{%- if cookiecutter.auth == "api_key" %}
    if name == "api_key_digests" and not value:
        return "must list at least one key digest (`make api-key`)"
{%- elif cookiecutter.auth == "jwt" %}
    if name == "jwt_secret" and value.get_secret_value() == DEVELOPMENT_JWT_SECRET:
        return "is the published development secret: set your own (`make jwt-secret`)"
    if name == "jwt_users" and not value:
        return "must list at least one user (`make password-hash`): nobody could sign in"
{%- endif %}
{%- if cookiecutter.database == "postgresql" %}
    if name == "database_url" and not value.get_secret_value().startswith("postgresql+"):
        return "must be a PostgreSQL URL (postgresql+asyncpg://...) outside development"
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}
    if name == "broker_url" and (reason := unsafe_broker_url(value.get_secret_value())):
        return reason
{%- endif %}
    if name == "allowed_hosts" and "*" in value:
        return "'*' accepts any Host header: list the service's names"
    if name == "docs_username" and docs and not value.get_secret_value():
        return f"is required with {ENV_PREFIX}DOCS_IN_PRODUCTION"
    if name == "docs_password" and docs:
        password = value.get_secret_value()
        username = earlier.get("docs_username", SecretStr("")).get_secret_value()
        if len(password) < 16 or password == username:
            return (
                f"must be at least 16 characters, other than the username, with "
                f"{ENV_PREFIX}DOCS_IN_PRODUCTION"
            )
    if name == "metrics_token" and len(value.get_secret_value()) < 32:
        return (
            "must be at least 32 characters outside development (`make metrics-token`): "
            "/metrics is never open there"
        )
    return None

{%- if cookiecutter.messaging == "rabbitmq" %}


def unsafe_broker_url(url: str) -> str | None:
    """Why a broker URL is unsafe outside development (RabbitMQ's guest, no password), or None."""
    if not url:
        return "is required outside development (amqp://user:password@host:5672/vhost)"
    parts = urlsplit(url)
    if parts.username in (None, "", "guest") or not parts.password:
        return "must name a user of its own with a password (not RabbitMQ's guest)"
    return None
{%- endif %}


def unsafe(reason: str) -> PydanticCustomError:
    """A refusal whose message is the reason alone (no "Value error, " before it)."""
    return PydanticCustomError("unsafe_setting", reason)


def describe(error: ValidationError) -> str:
    """One line naming each bad setting by its environment variable."""
    parts = []
    for item in error.errors():
        variable = f"{ENV_PREFIX}{str(item['loc'][0]).upper()}: " if item["loc"] else ""
        # A validator's ValueError is its message, without pydantic's "Value error, " before it.
        cause = item.get("ctx", {}).get("error") if item["type"] == "value_error" else None
        parts.append(f"{variable}{cause or item['msg']}")
    return "; ".join(parts)


def describe_undecodable(error: SettingsError) -> str:
    """A value pydantic-settings could not decode (a JSON setting), named by its variable."""
    # pydantic-settings names the field in its message only; any other wording is shown as is.
    field = re.search(r'field "(\w+)"', str(error))
    if field is None or field[1] not in Settings.model_fields:
        return str(error)
    return f"{ENV_PREFIX}{field[1].upper()}: not valid JSON ({error.__cause__})"


@lru_cache
def get_settings() -> Settings:
    """The settings, read once per process; bad values stop the service with one line."""
    try:
        return Settings()
    except ValidationError as error:
        raise SystemExit(f"ERROR: invalid settings: {describe(error)}") from None
    except SettingsError as error:
        raise SystemExit(f"ERROR: invalid settings: {describe_undecodable(error)}") from None
