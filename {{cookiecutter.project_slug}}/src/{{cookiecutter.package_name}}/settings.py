"""Service configuration.

Each setting comes, first match wins, from the environment variable named ENV_PREFIX plus the
setting's name in capitals, from a `.env` file in the working directory, or from the default
below. For example, log_level is read from
    {{ cookiecutter.package_name.upper() }}_LOG_LEVEL
Defaults are safe for local development. Only `development` is lenient: in every other
environment (staging as much as production) the values unsafe outside a laptop are refused at
startup, all of them at once, each named by its variable. `.env.example` lists every setting.

The service-wide settings are here; each optional feature's are in <feature>_settings.py beside
this file, composed into Settings below.
"""

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
{% set features = [] %}
{%- if cookiecutter.database != "none" %}
from .db_settings import DatabaseSettings
{%- set _ = features.append("DatabaseSettings") %}
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}
from .messaging_settings import MessagingSettings
{%- set _ = features.append("MessagingSettings") %}
{%- endif %}
{%- if cookiecutter.auth != "none" %}
from .auth_settings import AuthSettings
{%- set _ = features.append("AuthSettings") %}
{%- endif %}
{%- if cookiecutter.include_examples %}
from .examples_settings import ExamplesSettings
{%- set _ = features.append("ExamplesSettings") %}
{%- endif %}
{%- if cookiecutter.include_realtime %}
from .realtime_settings import RealtimeSettings
{%- set _ = features.append("RealtimeSettings") %}
{%- endif %}
from .observability.error_tracking import SentrySettings
from .settings_group import ENV_PREFIX as ENV_PREFIX  # re-exported: imported from here
from .settings_group import REFUSED, RateLimit, SettingsGroup, variable

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["console", "json"]
CommaSeparated = Annotated[list[str], NoDecode]
Networks = Annotated[list[IPvAnyNetwork], NoDecode]

# Defaults that depend on the environment, as (development, every other environment): taken
# when the setting is unset or empty.
BY_ENVIRONMENT = {
    "log_format": ("console", "json"),  # a terminal, or a log pipeline
    # Trying the API out in /docs should meet the default limit, not a stricter one.
    "rate_limit_write": ("100/minute", "10/minute"),
}


class ServiceSettings(SettingsGroup):
    """The settings every bake has: service, server, health, edge, docs, rate limits,
    observability and the resilience of calls to upstreams."""

    # Service
    service_name: str = "{{ cookiecutter.project_slug }}"
    debug: bool = False  # tracebacks in 500 responses: development only
    log_level: LogLevel = "INFO"
    # console: one readable line per record; json: one object per line (BY_ENVIRONMENT)
    log_format: LogFormat = "console"

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

    # Security edge: accepted Host names ('*.example.com' matches subdomains; '*' any, refused
    # outside development; 'testserver' is the test client's), request body limit, gzip (off
    # behind a proxy that compresses, as deploy/nginx does) and its threshold, HSTS max-age
    # (sent outside development only).
    allowed_hosts: CommaSeparated = ["localhost", "127.0.0.1", "::1", "testserver"]
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    gzip_enabled: bool = True
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
    rate_limit_write: RateLimit = "100/minute"
{%- if cookiecutter.rate_limit_storage == "redis" %}
    rate_limit_storage_uri: str = "redis://localhost:6379/0"  # shared by every replica
{%- else %}
    rate_limit_storage_uri: str = "memory://"  # per process; a redis:// URI shares them
{%- endif %}
    # Storage down: count per process in memory (true) or refuse with 503 (false).
    rate_limit_fail_open: bool = True

    # Observability: /metrics, tracing (also the standard OTEL_* variables), access log
    metrics_token: SecretStr = SecretStr("")  # empty: /metrics is open (development only)
    trace_sample_ratio: float = Field(default=0.1, ge=0, le=1)
    trace_console: bool = False
    access_log: bool = True

    @model_validator(mode="before")
    @classmethod
    def defaults_by_environment(cls, data: Any) -> Any:
        """An unset or empty setting of BY_ENVIRONMENT takes the environment's default."""
        if not isinstance(data, dict):
            return data
        lenient = data.get("environment", "development") == "development"
        unset = [name for name in BY_ENVIRONMENT if data.get(name) in (None, "")]
        return data | {name: BY_ENVIRONMENT[name][0 if lenient else 1] for name in unset}

    @field_validator("trusted_proxies", "cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def refusals(self) -> dict[str, str]:
        refused = super().refusals()
        if self.cors_allow_credentials and "*" in self.cors_origins:
            refused["cors_allow_credentials"] = (
                f"true with {variable('cors_origins')}='*' lets any site act as the user: "
                "list the allowed origins"
            )
        if self.lenient:
            return refused
        if self.debug:
            refused["debug"] = (
                "must be false outside development: it shows tracebacks to every client"
            )
        if any(network.prefixlen == 0 for network in self.trusted_proxies):
            refused["trusted_proxies"] = (
                "covers every address, so any client could choose the address it is rate "
                "limited by: list the proxies"
            )
        if "*" in self.allowed_hosts:
            refused["allowed_hosts"] = "'*' accepts any Host header: list the service's names"
        if self.docs_in_production:
            refused |= self.docs_refusals()
        if len(self.metrics_token.get_secret_value()) < 32:
            refused["metrics_token"] = (  # nosec B105
                "must be at least 32 characters outside development (`make metrics-token`): "
                "/metrics is never open there"
            )
        return refused

    def docs_refusals(self) -> dict[str, str]:
        """The docs' credentials outside development, when the docs are served there."""
        refused = {}
        username = self.docs_username.get_secret_value()
        password = self.docs_password.get_secret_value()
        if not username:
            refused["docs_username"] = f"is required with {variable('docs_in_production')}"
        if len(password) < 16 or password == username:
            refused["docs_password"] = (
                "must be at least 16 characters, other than the username, with "
                f"{variable('docs_in_production')}"
            )
        return refused


class Settings(
{%- for feature in features %}
    {{ feature }},
{%- endfor %}
    SentrySettings,
    ServiceSettings,
    BaseSettings,
):
    """The application's settings: the service-wide ones and those of each feature baked."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )


def problems(error: ValidationError) -> list[tuple[str, str]]:
    """Each bad setting named in the error (its field, or "" for none) and what is wrong."""
    found = []
    for item in error.errors():
        if item["type"] == REFUSED:
            found += item["ctx"]["settings"].items()
            continue
        name = str(item["loc"][0]) if item["loc"] else ""
        # A validator's ValueError is its message, without pydantic's "Value error, " before it.
        cause = item.get("ctx", {}).get("error") if item["type"] == "value_error" else None
        found.append((name, str(cause or item["msg"])))
    return found


def described(found: list[tuple[str, str]]) -> str:
    """One line naming each bad setting by its environment variable."""
    return "; ".join(f"{variable(name)}: {why}" if name else why for name, why in found)


def describe(error: ValidationError) -> str:
    return described(problems(error))


def refused_besides(error: ValidationError) -> list[tuple[str, str]]:
    """The settings refused by the groups' rules besides the invalid ones of `error`.

    The rules run only once every field is valid: run them again with each invalid setting at
    its default, so that one start names every invalid and every refused variable.
    """
    invalid = {name for name, _ in problems(error) if name in Settings.model_fields}
    if not invalid:
        return []
    fields = Settings.model_fields
    defaults = {name: fields[name].get_default(call_default_factory=True) for name in invalid}
    try:
        Settings(**defaults)
    except ValidationError as refused:
        return [(name, why) for name, why in problems(refused) if name not in invalid]
    return []


@lru_cache
def get_settings() -> Settings:
    """The settings, read once per process; bad values stop the service with one line."""
    try:
        return Settings()
    except ValidationError as error:
        found = problems(error) + refused_besides(error)
        raise SystemExit(f"ERROR: invalid settings: {described(found)}") from None
