"""The examples' settings (the characters API and its cache, the primes' process pool),
composed into Settings (settings.py)."""

from pydantic import Field, SecretStr, field_validator

from .settings_group import SettingsGroup

CACHE_SCHEMES = ("memory://", "redis://", "rediss://")


class ExamplesSettings(SettingsGroup):
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

    @field_validator("cache_url")
    @classmethod
    def cache_scheme(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(CACHE_SCHEMES):
            raise ValueError("must start with memory://, redis:// or rediss://")
        return value
