"""Error tracking with Sentry (docs/error-tracking.md): off until SENTRY_DSN is set.

Reported: every record logged at ERROR (the 500s, unhandled or a database error, a background
loop's unknown failure) and, in the worker, each failed handling. Not reported: what the service
answers on purpose (4xx, 429, and the 503s of a dependency down, logged at WARNING). Each event
carries the release (<service>@<version>), the environment, and the request id and trace id of
the log lines (tags request_id and trace_id): from a Sentry issue to its trace and its logs.

Never sent: the local variables of the stack's frames (they hold the ASGI scope, with the
request's Authorization and Cookie headers), request bodies, cookies, query strings, addresses;
headers, extra fields and breadcrumb data named like a secret are replaced. Sentry's own
performance tracing stays off: OpenTelemetry traces (observability/tracing.py).
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

from opentelemetry import trace
from pydantic import BaseModel, Field, SecretStr, field_validator

from .. import __version__
from .request_id import request_id_var

if TYPE_CHECKING:  # settings.py imports this module: its Settings is for the type checker only
    from sentry_sdk.types import Event, Hint

    from ..settings import Settings

# Names whose values are replaced wherever the scrubber looks (headers, extra fields, breadcrumbs)
# besides Sentry's own list (authorization, cookie, x_api_key, token, password, secret...): the
# access log's client address.
DENYLIST = ["client"]
P = ParamSpec("P")


class SentrySettings(BaseModel):
    # Error tracking: the project's DSN (Sentry: Project Settings, Client Keys), empty: off. A
    # secret: whoever has it can send events to the project.
    sentry_dsn: SecretStr = SecretStr("")
    # Share of errors sent, 0-1; Sentry's own tracing stays off (OpenTelemetry traces).
    sentry_sample_rate: float = Field(default=1.0, ge=0, le=1)

    @field_validator("sentry_dsn")
    @classmethod
    def sentry_dsn_shape(cls, value: SecretStr) -> SecretStr:
        dsn = value.get_secret_value()
        if dsn and not well_formed_dsn(dsn):
            raise ValueError(
                "must be a Sentry DSN, https://<public key>@<host>/<project id> "
                "(the project's Client Keys page)"
            )
        return value


def well_formed_dsn(dsn: str) -> bool:
    """Whether `dsn` has what Sentry's client needs: http(s), a public key, a host, a project."""
    try:
        parts = urlsplit(dsn)
        parts.port  # raises ValueError when not a number
    except ValueError:
        return False
    project = parts.path.rsplit("/", 1)[-1]
    return (
        parts.scheme in ("http", "https")
        and bool(parts.username and parts.hostname)
        and project.isdigit()
    )


def add_correlation_tags(event: "Event", hint: "Hint") -> "Event":
    """before_send: the ids the log lines carry, and no query string (it may hold secrets)."""
    tags = event.setdefault("tags", {})
    if request_id := request_id_var.get():
        tags["request_id"] = request_id
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        tags["trace_id"] = format(span.trace_id, "032x")
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("query_string", None)
    return event


def start(settings: "Settings") -> None:
    """Sentry for this process, when SENTRY_DSN is set."""
    # Imported here: without a DSN the service does not load sentry-sdk at all (start-up time).
    import sentry_sdk
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    answered = set[int]()  # an HTTPException (a 503, a 429) is an answer, not an error
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        release=f"{settings.service_name}@{__version__}",
        environment=settings.environment,
        sample_rate=settings.sentry_sample_rate,
        # send_default_pii left unset: off (setting it is deprecated, for data_collection).
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, *DENYLIST], recursive=True),
        before_send=add_correlation_tags,
        auto_enabling_integrations=False,  # no patching of libraries this list does not name
        integrations=[
            StarletteIntegration(failed_request_status_codes=answered),
            FastApiIntegration(failed_request_status_codes=answered),
            # Logs are the event source: an ERROR is an event, the lines before it breadcrumbs.
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
    )


@asynccontextmanager
async def error_tracking(settings: "Settings") -> AsyncIterator[None]:
    """For the lifespan and the worker: Sentry while the process runs, its queue sent at the end
    (in the process itself: a server's worker processes never run atexit)."""
    if not settings.sentry_dsn.get_secret_value():
        yield
        return
    start(settings)
    try:
        yield
    finally:
        stop()


def flush() -> None:
    """Sends what is queued now, and keeps Sentry on: for a process that may be frozen."""
    import sentry_sdk

    sentry_sdk.flush()


def stop() -> None:
    """Sends what is queued, then leaves the process without Sentry."""
    import sentry_sdk

    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


class Delivery(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def type(self) -> str: ...


D = TypeVar("D", bound=Delivery)


def reported(
    handler: Callable[Concatenate[D, P], Awaitable[None]],
) -> Callable[Concatenate[D, P], Coroutine[Any, Any, None]]:
    """A message handler whose failures are reported (inside the consumer's span: its trace id),
    then raised again for the consumer to retry or dead-letter the message."""

    async def handle(event: D, /, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await handler(event, *args, **kwargs)
        except Exception as error:
            import sentry_sdk  # loaded already when a DSN is set; a no-op without one

            sentry_sdk.capture_exception(error, tags={"message_id": event.id, "event": event.type})
            raise

    return handle
