"""Service configuration.

Each setting comes, first match wins, from the environment variable named ENV_PREFIX plus the
setting's name in capitals, from a `.env` file in the working directory, or from the default
below. For example, log_level is read from
    {{ cookiecutter.package_name.upper() }}_LOG_LEVEL
Defaults are safe for local development; in production the unsafe ones are refused at startup.
`.env.example` lists every setting.
"""

from functools import lru_cache
from typing import Annotated, Literal, Self

from limits import parse
from pydantic import Field, IPvAnyNetwork, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "{{ cookiecutter.package_name.upper() }}_"

Environment = Literal["development", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
CommaSeparated = Annotated[list[str], NoDecode]
Networks = Annotated[list[IPvAnyNetwork], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    # Service
    service_name: str = "{{ cookiecutter.project_slug }}"
    environment: Environment = "development"
    debug: bool = False  # tracebacks in 500 responses: development only
    log_level: LogLevel = "INFO"

    # Server, for `python -m {{ cookiecutter.package_name }}`
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Proxies (addresses or CIDRs) whose forwarding headers are believed; none by default.
    trusted_proxies: Networks = []

    # CORS: browser origins allowed to call the API; none by default.
    cors_origins: CommaSeparated = []
    cors_allow_credentials: bool = False

    # Health
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    # Rate limiting: limits such as "100/minute" or "5 per second", counted per client.
    rate_limit_enabled: bool = True
    rate_limit_default: str = "100/minute"  # every route but health and metrics
    rate_limit_write: str = "10/minute"  # routes that create or change data
{%- if cookiecutter.rate_limit_storage == "redis" %}
    rate_limit_storage_uri: str = "redis://localhost:6379/0"  # shared by every replica
{%- else %}
    rate_limit_storage_uri: str = "memory://"  # per process; a redis:// URI shares them
{%- endif %}
    rate_limit_fail_open: bool = True  # storage down: serve unchecked (true) or 503 (false)

    @field_validator("trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("rate_limit_default", "rate_limit_write")
    @classmethod
    def parse_rate_limit(cls, value: str) -> str:
        parse(value)  # raises ValueError naming the bad limit
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def refuse_unsafe_values(self) -> Self:
        if "*" in self.cors_origins and self.cors_allow_credentials:
            raise ValueError(
                "CORS_ORIGINS='*' with CORS_ALLOW_CREDENTIALS=true lets any site act as "
                "the user; list the allowed origins"
            )
        trusts_everyone = any(network.prefixlen == 0 for network in self.trusted_proxies)
        if self.environment == "production" and trusts_everyone:
            raise ValueError(
                "TRUSTED_PROXIES covers every address: any client could choose the address it "
                "is rate limited by; list the proxies"
            )
        if self.environment == "production" and self.debug:
            raise ValueError("DEBUG must be false in production (it leaks tracebacks)")
        return self


def describe(error: ValidationError) -> str:
    """One line naming each bad setting by its environment variable."""
    parts = []
    for item in error.errors():
        # A field's error names its variable; a check across fields has no location.
        variable = f"{ENV_PREFIX}{str(item['loc'][0]).upper()}: " if item["loc"] else ""
        parts.append(f"{variable}{item['msg']}")
    return "; ".join(parts)


@lru_cache
def get_settings() -> Settings:
    """The settings, read once per process; a bad value stops the service with one line."""
    try:
        return Settings()
    except ValidationError as error:
        raise SystemExit(f"ERROR: invalid settings: {describe(error)}") from None
