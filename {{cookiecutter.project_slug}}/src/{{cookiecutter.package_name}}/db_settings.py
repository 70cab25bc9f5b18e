"""The database's settings (db.py), composed into Settings (settings.py)."""

from pydantic import Field, SecretStr, field_validator

from .settings_group import SettingsGroup

# The database of `make run` on a laptop: a file in the working directory (git-ignored).
DEVELOPMENT_DATABASE_URL = "sqlite+aiosqlite:///./{{ cookiecutter.package_name }}.db"
{%- if cookiecutter.database == "postgresql" %}
DATABASE_SCHEMES = ("postgresql+asyncpg://", "sqlite+aiosqlite:///")
{%- else %}
DATABASE_SCHEMES = ("sqlite+aiosqlite:///",)
{%- endif %}


class DatabaseSettings(SettingsGroup):
{%- if cookiecutter.database == "postgresql" %}
    # postgresql+asyncpg://user:password@host:5432/name. Empty: in development a local SQLite
    # file (sqlite+aiosqlite:///./file.db works too); refused everywhere else.
    database_url: SecretStr = SecretStr("")
{%- else %}
    # A SQLite file, sqlite+aiosqlite:///path (one writer at a time: keep one replica).
    database_url: SecretStr = SecretStr(DEVELOPMENT_DATABASE_URL)
{%- endif %}
    database_pool_size: int = Field(default=5, ge=1, le=100)  # connections kept open
    database_max_overflow: int = Field(default=10, ge=0, le=100)  # opened beyond, under load
    # Seconds to wait for a pooled connection, or to open one, before answering 503
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Seconds one statement may run before the database cancels it (a 503)
    database_statement_timeout_seconds: float = Field(default=5.0, gt=0, le=600)

    @field_validator("database_url")
    @classmethod
    def async_driver(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and not url.startswith(DATABASE_SCHEMES):
            raise ValueError(f"must start with {' or '.join(DATABASE_SCHEMES)} (an async driver)")
        return value
{%- if cookiecutter.database == "postgresql" %}

    def refusals(self) -> dict[str, str]:
        refused = super().refusals()
        url = self.database_url.get_secret_value()
        if not self.lenient and not url.startswith("postgresql+"):
            refused["database_url"] = (
                "must be a PostgreSQL URL (postgresql+asyncpg://...) outside development"
            )
        return refused
{%- endif %}
