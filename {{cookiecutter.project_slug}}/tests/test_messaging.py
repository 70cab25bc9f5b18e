"""Messaging without a broker: the settings, the messages and the worker's handling of
deliveries, against fakes of the broker and of a delivery (the template's own tests run all of it
against a real RabbitMQ). {% if cookiecutter.database != "none" %}The outbox and its relay: test_outbox.py{% else %}The publisher: test_publisher.py{% endif %}."""

import asyncio
import json
import time
from typing import {% if cookiecutter.database != "none" %}Any, {% endif %}cast

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr, ValidationError

from {{ cookiecutter.package_name }}.messaging.broker import dead_queue, retry_queue
from {{ cookiecutter.package_name }}.messaging.events import (
    ATTEMPT_HEADER,
    CREATED_HEADER,
    Event,
    article_event,
    to_message,
)
from {{ cookiecutter.package_name }}.messaging.handlers import handle
from {{ cookiecutter.package_name }}.observability.error_tracking import (
    reported,
    start,
    stop,
)
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import LogLines, production_settings
from .deliveries import FakeDelivery, Handled, consume, delivery, sample
from .fake_broker import FakeBroker
from .sentry_sink import serving


def test_production_refuses_a_missing_or_guest_broker_url() -> None:
    for url, reason in [
        ("", "is required outside development"),
        ("amqp://guest:guest@rabbitmq:5672/", "not RabbitMQ's guest"),
        ("amqp://service@rabbitmq:5672/", "with a password"),
    ]:
        with pytest.raises(ValidationError, match=reason):
            Settings(_env_file=None, **production_settings(broker_url=url))
    good = production_settings(broker_url="amqps://service:s3cret@rabbitmq:5671/prod")
    assert Settings(_env_file=None, **good).broker_url.get_secret_value().startswith("amqps://")


def test_any_environment_refuses_a_url_that_is_not_amqp() -> None:
    with pytest.raises(ValidationError, match="must start with amqp:// or amqps://"):
        Settings(_env_file=None, broker_url="redis://localhost:6379/0")


def test_retries_wait_longer_each_time_then_end_in_the_dead_letter_queue() -> None:
    settings = Settings(_env_file=None, broker_queue="q", broker_retry_seconds=0.5)
    assert [retry_queue(settings, n) for n in (1, 2, 3)] == [
        "q.retry.500ms",
        "q.retry.1000ms",
        "q.retry.2000ms",
    ]
    assert dead_queue(settings) == "q.dead"


def test_an_event_is_a_persistent_json_message_with_its_id_and_the_trace_context() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        event = article_event("created", {"id": 7, "name": "A", "price": 1.0, "version": 1})
    message = to_message(event)
    assert message.message_id == event.id and message.type == "article.created"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert json.loads(message.body) == {"id": 7, "name": "A", "price": 1.0, "version": 1}
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert trace_id in str((message.headers or {})["traceparent"])
    assert (message.headers or {})[ATTEMPT_HEADER] == 0


def test_an_event_carries_the_time_it_was_created() -> None:
    before = time.time()
    event = article_event("created", {"id": 7, "name": "A", "price": 1.0, "version": 1})
    assert before <= float(event.headers[CREATED_HEADER]) <= time.time()
    assert (to_message(event).headers or {})[CREATED_HEADER] == event.headers[CREATED_HEADER]


def test_the_example_handler_refuses_unknown_or_malformed_events() -> None:
    def run(event: Event) -> None:
{%- if cookiecutter.database != "none" %}
        asyncio.run(handle(event, cast(Any, None)))  # the example writes nothing
{%- else %}
        asyncio.run(handle(event))
{%- endif %}

    run(Event("article.deleted", {"id": 3}))
    with pytest.raises(Exception, match="article.exploded"):
        run(Event("article.exploded", {"id": 3}))
    with pytest.raises(ValidationError):
        run(Event("article.created", {"id": "three", "version": 1}))


def test_a_handled_message_is_acked_and_logged_once(
    settings: Settings, log_lines: LogLines
) -> None:
    handler = Handled()
    first, again = delivery(message_id="m-1"), delivery(message_id="m-1", redelivered=True)
    broker = consume(settings, handler, first, again)
    assert handler.ids == ["m-1"]  # the redelivery is recognised by its id
    assert cast(FakeDelivery, first).acked == 1 and cast(FakeDelivery, again).acked == 1
    assert broker.published == []
    lines = [line for line in log_lines() if line.get("message_id") == "m-1"]
    assert [(line["message"], line["event"]) for line in lines] == [
        ("handled", "article.created"),
        ("duplicate", "article.created"),
    ]


def test_a_handled_message_is_timed_from_the_creation_of_its_event(settings: Settings) -> None:
    def timed(part: str) -> float:
        return sample(f"messaging_end_to_end_seconds_{part}", event="article.created")

    count, total = timed("count"), timed("sum")
    created = {CREATED_HEADER: f"{time.time() - 5:.6f}"}
    consume(
        settings,
        Handled(),
        delivery(message_id="timed-1", headers=created),
        delivery(message_id="timed-1", headers=created, redelivered=True),
        delivery(message_id="timed-2", headers={CREATED_HEADER: "not a time"}),
        delivery(message_id="timed-3", headers={CREATED_HEADER: "nan"}),
        delivery(message_id="timed-4"),
    )
    assert timed("count") == count + 1  # not the duplicate, nor those without a time
    assert 5 <= timed("sum") - total < 60


def test_a_failing_handler_sends_the_message_to_wait_then_to_the_dead_letter_queue(
    settings: Settings,
) -> None:
    handler = Handled(failing=frozenset({"bad"}))
    dead_before = sample("messaging_dead_lettered_total", event="article.created")
    attempts = [
        delivery(message_id="bad", headers={ATTEMPT_HEADER: n, "traceparent": "00-ab-cd-01"})
        for n in range(settings.broker_attempts)
    ]
    broker = consume(settings, handler, *attempts)
    targets = [routing_key for _, routing_key, _ in broker.published]
    waits = [retry_queue(settings, n) for n in range(1, settings.broker_attempts)]
    assert targets == [*waits, dead_queue(settings)]
    assert all(cast(FakeDelivery, message).acked == 1 for message in attempts)
    dead = broker.published[-1][2]
    assert dead.message_id == "bad" and (dead.headers or {})["traceparent"] == "00-ab-cd-01"
    assert "RuntimeError: the handler failed" in str((dead.headers or {})["x-error"])
    assert handler.ids == []
    # The worker's /metrics (WORKER_METRICS_PORT) shows it: deploy/prometheus/alerts.yml.
    assert sample("messaging_dead_lettered_total", event="article.created") == dead_before + 1


def test_a_failing_handler_is_reported_once_with_the_message_id_and_trace_id(
    settings: Settings,
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    failing = reported(Handled(failing=frozenset({"bad"})))
    with serving() as sink:
        start(settings.model_copy(update={"sentry_dsn": SecretStr(sink.dsn)}))
        try:
            message = delivery(message_id="bad", headers={"traceparent": traceparent})
            consume(settings, failing, message)
        finally:
            stop()
    [event] = sink.events()
    assert (event["tags"]["message_id"], event["tags"]["trace_id"]) == ("bad", trace_id)
    assert event["exception"]["values"][-1]["value"] == "the handler failed"


def test_a_message_without_an_id_or_json_goes_to_the_dead_letter_queue_at_once(
    settings: Settings,
) -> None:
    no_id = delivery(message_id=None)
    not_json = cast(AbstractIncomingMessage, FakeDelivery(b"{not json", message_id="x"))
    broker = consume(settings, Handled(), no_id, not_json)
    assert [routing_key for _, routing_key, _ in broker.published] == [dead_queue(settings)] * 2


def test_a_broker_lost_mid_retry_leaves_the_message_unacked(settings: Settings) -> None:
    """Not acked: the broker delivers it again once the worker is back."""
    message = delivery(message_id="m")
    consume(settings, Handled(failing=frozenset({"m"})), message, broker=FakeBroker(down=True))
    assert cast(FakeDelivery, message).acked == 0
