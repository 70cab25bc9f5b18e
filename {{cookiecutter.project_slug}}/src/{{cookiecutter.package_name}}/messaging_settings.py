"""The settings of messaging (messaging/, worker.py), composed into Settings (settings.py)."""

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from .settings_group import SettingsGroup

# The broker of `make run` on a laptop (compose.yaml's rabbitmq): RabbitMQ's own default user.
DEVELOPMENT_BROKER_URL = "amqp://guest:guest@localhost:5672/"  # nosec B105


class MessagingSettings(SettingsGroup):
    # RabbitMQ: amqp://user:password@host:5672/vhost, amqps:// for TLS. Empty: in development
    # the local broker (DEVELOPMENT_BROKER_URL); refused everywhere else.
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

    @field_validator("broker_url")
    @classmethod
    def amqp_scheme(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and not url.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value

    def refusals(self) -> dict[str, str]:
        refused = super().refusals()
        if not self.lenient and (reason := unsafe_broker_url(self.broker_url.get_secret_value())):
            refused["broker_url"] = reason
        return refused


def unsafe_broker_url(url: str) -> str | None:
    """Why a broker URL is unsafe outside development (RabbitMQ's guest, no password), or None."""
    if not url:
        return "is required outside development (amqp://user:password@host:5672/vhost)"
    parts = urlsplit(url)
    if parts.username in (None, "", "guest") or not parts.password:
        return "must name a user of its own with a password (not RabbitMQ's guest)"
    return None
