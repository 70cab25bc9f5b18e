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

    # Security edge: accepted Host names ('*.example.com' matches subdomains; '*' any, refused in
    # production; 'testserver' is the test client's), request body limit, gzip threshold, HSTS
    # max-age (sent in production only).
    allowed_hosts: CommaSeparated = ["localhost", "127.0.0.1", "::1", "testserver"]
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    gzip_minimum_bytes: int = Field(default=1024, ge=0)
    hsts_max_age_seconds: int = Field(default=63072000, ge=0)
    # API docs (/docs, /redoc, /openapi.json): public outside production; in production absent
    # unless docs_in_production, and then behind HTTP Basic auth with these credentials.
    docs_in_production: bool = False
    docs_username: SecretStr = SecretStr("")
    docs_password: SecretStr = SecretStr("")

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

    @model_validator(mode="after")
    def refuse_unsafe_values(self) -> Self:
        if "*" in self.cors_origins and self.cors_allow_credentials:
            raise ValueError(
                "CORS_ORIGINS='*' with CORS_ALLOW_CREDENTIALS=true lets any site act as "
                "the user; list the allowed origins"
            )
        if self.environment == "production" and self.debug:
            raise ValueError("DEBUG must be false in production (it leaks tracebacks)")
        if self.environment == "production":
            self.refuse_unsafe_edge()
        return self

    def refuse_unsafe_edge(self) -> None:
        if "*" in self.allowed_hosts:
            raise ValueError("ALLOWED_HOSTS='*' accepts any Host header; list the service's names")
        if self.docs_in_production:
            user = self.docs_username.get_secret_value()
            password = self.docs_password.get_secret_value()
            # The defaults are empty: both must be set, and the password long enough.
            if not user or len(password) < 16 or password == user:
                raise ValueError(
                    "DOCS_IN_PRODUCTION needs DOCS_USERNAME and a DOCS_PASSWORD of at least 16 "
                    "characters, other than the username"
                )


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
