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

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "{{ cookiecutter.package_name.upper() }}_"

Environment = Literal["development", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
CommaSeparated = Annotated[list[str], NoDecode]


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
    # Addresses whose X-Forwarded-For / X-Forwarded-Proto are believed; none by default.
    trusted_proxies: CommaSeparated = []

    # CORS: browser origins allowed to call the API; none by default.
    cors_origins: CommaSeparated = []
    cors_allow_credentials: bool = False

    # Health
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    # Observability: /metrics, tracing (also the standard OTEL_* variables), access log
    metrics_token: SecretStr = SecretStr("")  # empty: /metrics is open
    trace_sample_ratio: float = Field(default=0.1, ge=0, le=1)
    trace_console: bool = False
    access_log: bool = True

    @field_validator("trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
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
