"""Messaging without a broker: the settings, the messages, {% if cookiecutter.database != "none" %}the outbox and its relay{% else %}the publisher{% endif %}, and the
worker's handling of deliveries, against fakes of the broker and of a delivery (the template's
own tests run all of it against a real RabbitMQ)."""

import asyncio
import json
import time
{%- if cookiecutter.database != "none" %}
import os
import subprocess
import sys
from collections.abc import Callable
{%- endif %}
from dataclasses import dataclass, field
{%- if cookiecutter.database != "none" %}
from datetime import UTC, datetime, timedelta
from pathlib import Path
{%- endif %}
from typing import Any, cast

import aio_pika
{%- if cookiecutter.include_examples and cookiecutter.database == "none" %}
import httpx2
{%- endif %}
import pytest
from aio_pika.abc import AbstractIncomingMessage
{%- if cookiecutter.include_examples %}
from fastapi.testclient import TestClient
{%- endif %}
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY
{%- if cookiecutter.database != "none" %}
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
{%- endif %}
from pydantic import SecretStr, ValidationError
{%- if cookiecutter.database != "none" %}
from sqlalchemy import func, select
{%- endif %}

{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.package_name }}.db import Database
{%- endif %}
from {{ cookiecutter.package_name }}.messaging.broker import (
    Broker,
    BrokerUnavailable,
    dead_queue,
    retry_queue,
)
from {{ cookiecutter.package_name }}.messaging.consumer import Consumer
from {{ cookiecutter.package_name }}.messaging.dedup import Deduplicator, Handler
from {{ cookiecutter.package_name }}.messaging.events import (
    ATTEMPT_HEADER,
    CREATED_HEADER,
    Event,
    article_event,
    to_message,
)
from {{ cookiecutter.package_name }}.messaging.handlers import handle
{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.package_name }}.messaging.dedup import ProcessedMessage
from {{ cookiecutter.package_name }}.messaging.outbox import OutboxRow, Relay
{%- else %}
from {{ cookiecutter.package_name }}.messaging.publisher import Publisher, get_events
{%- endif %}
from {{ cookiecutter.package_name }}.observability.error_tracking import (
    reported,
    start,
    stop,
)
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import LogLines, production_settings
{%- if cookiecutter.include_examples and cookiecutter.database == "none" %}
from .conftest import TEST_BROKER_URL, Server
{%- endif %}
from .fake_broker import FakeBroker
from .sentry_sink import serving
{%- if cookiecutter.database != "none" %}
from .conftest import run_async
{%- endif %}

URL = "/api/v1/articles"


@dataclass
class FakeDelivery:
    """What aio-pika hands the consumer callback, with ack() recorded."""

    body: bytes
    message_id: str | None = "id-1"
    type: str | None = "article.created"
    headers: dict[str, Any] = field(default_factory=dict)
    routing_key: str | None = "article.created"
    content_type: str | None = "application/json"
    redelivered: bool = False
    acked: int = 0

    async def ack(self) -> None:
        self.acked += 1


def delivery(data: Any = None, **fields: Any) -> AbstractIncomingMessage:
    body = json.dumps({"id": 1, "version": 1} if data is None else data).encode()
    return cast(AbstractIncomingMessage, FakeDelivery(body, **fields))


def sample(name: str, **labels: str) -> float:
    """A metric's value in this process, 0 before its first use."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


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


class Handled:
    """A handler that records what it ran on, and fails for the ids in `failing`."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.ids: list[str] = []

    async def __call__(self, event: Event, *_: Any) -> None:
        if event.id in self.failing:
            raise RuntimeError("the handler failed")
        self.ids.append(event.id)


{%- if cookiecutter.database != "none" %}


def consume(
    settings: Settings,
    handler: Handler,
    *deliveries: AbstractIncomingMessage,
    at_once: bool = False,
) -> FakeBroker:
    """Runs the consumer on `deliveries`, one after the other or all at once (as a prefetch
    above one does); returns the broker it used."""
    broker = FakeBroker()

    async def work() -> None:
        async with Database(settings).running() as sessions:
            consumer = Consumer(settings, cast(Broker, broker), Deduplicator(handler, sessions))
            if at_once:
                await asyncio.gather(*(consumer.on_message(m) for m in deliveries))
            else:
                for message in deliveries:
                    await consumer.on_message(message)

    run_async(work())
    return broker
{%- else %}


def consume(
    settings: Settings, handler: Handler, *deliveries: AbstractIncomingMessage
) -> FakeBroker:
    """Runs one consumer on `deliveries`, one after the other; returns the broker it used."""
    broker = FakeBroker()

    async def work() -> None:
        consumer = Consumer(settings, cast(Broker, broker), Deduplicator(handler))
        for message in deliveries:
            await consumer.on_message(message)

    asyncio.run(work())
    return broker
{%- endif %}


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
    handler, message = Handled(failing=frozenset({"m"})), delivery(message_id="m")
    broker = FakeBroker(down=True)

    async def work() -> None:
{%- if cookiecutter.database != "none" %}
        async with Database(settings).running() as sessions:
            consumer = Consumer(settings, cast(Broker, broker), Deduplicator(handler, sessions))
            await consumer.on_message(message)
{%- else %}
        await Consumer(settings, cast(Broker, broker), Deduplicator(handler)).on_message(message)
{%- endif %}

{%- if cookiecutter.database != "none" %}

    run_async(work())
{%- else %}

    asyncio.run(work())
{%- endif %}
    assert cast(FakeDelivery, message).acked == 0
{%- if cookiecutter.database != "none" %}


def count(
    settings: Settings, model: type[OutboxRow] | type[ProcessedMessage], **where: Any
) -> int:
    async def work() -> int:
        async with Database(settings).running() as sessions, sessions() as session:
            query = select(func.count()).select_from(model).filter_by(**where)
            return int(await session.scalar(query) or 0)

    return run_async(work())


def add_events(settings: Settings, *numbers: int, age: timedelta = timedelta(0)) -> None:
    """Outbox rows of article.created events, as a write would add them, `age` old."""

    async def work() -> None:
        async with Database(settings).running() as sessions, sessions.begin() as session:
            for number in numbers:
                event = article_event("created", {"id": number, "version": 1})
                session.add(OutboxRow(message_id=event.id, type=event.type, data=event.data,
                                      headers=event.headers,
                                      created_at=datetime.now(UTC) - age))  # fmt: skip

    run_async(work())


def relay_once(settings: Settings, broker: FakeBroker) -> int:
    async def work() -> int:
        async with Database(settings).running() as sessions:
            return await Relay(settings, sessions, cast(Broker, broker)).relay_batch()

    return run_async(work())
{%- if cookiecutter.include_examples %}


def test_a_write_and_its_event_commit_together(client: TestClient, settings: Settings) -> None:
    created = client.post(URL, json={"name": "Outboxed", "price": 2})
    assert created.status_code == 201
    refused = client.post(URL, json={"name": "OUTBOXED", "price": 2})
    assert refused.status_code == 409  # rolled back: its event with it
    article_id = created.json()["id"]
    assert client.put(f"{URL}/{article_id}", json={"name": "Outboxed", "price": 3}).is_success
    assert client.delete(f"{URL}/{article_id}").status_code == 204
    assert count(settings, OutboxRow) == 3
{%- endif %}


def test_the_relay_publishes_unpublished_rows_in_order_and_marks_them(
    settings: Settings,
) -> None:
    add_events(settings, 1, 2)
    down = FakeBroker(down=True)
    with pytest.raises(BrokerUnavailable):
        relay_once(settings, down)
    assert count(settings, OutboxRow, published_at=None) == 2  # nothing lost, nothing marked
    broker = FakeBroker()
    assert relay_once(settings, broker) == 2
    assert [json.loads(m.body)["id"] for _, _, m in broker.published] == [1, 2]
    assert {routing_key for _, routing_key, _ in broker.published} == {"article.created"}
    assert count(settings, OutboxRow, published_at=None) == 0
    assert relay_once(settings, broker) == 0  # marked: never published twice


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 10)


class BrokenBroker(FakeBroker):
    """Publishing fails with an error no one foresaw, until `mended`."""

    mended = False

    async def publish(
        self, message: aio_pika.Message, routing_key: str, exchange: str = ""
    ) -> None:
        if not self.mended:
            raise RuntimeError("a bug in the publishing code")
        await super().publish(message, routing_key, exchange)


def test_a_broker_down_is_one_warning_without_a_traceback(log_lines: LogLines) -> None:
    """An expected outage (RabbitMQ not started yet) is no bug: no ERROR, no traceback."""
    settings = Settings(_env_file=None, outbox_poll_seconds=0.01)
    failed = sample("messaging_outbox_relay_errors_total", error="BrokerUnavailable")
    broker = FakeBroker(down=True)

    async def work() -> None:
        async with Database(settings).running() as sessions:
            async with Relay(settings, sessions, cast(Broker, broker)).running():
                errors = "messaging_outbox_relay_errors_total"
                await until(lambda: sample(errors, error="BrokerUnavailable") >= failed + 3)

    run_async(work())
    lines = [line for line in log_lines() if line["message"].startswith("outbox relay")]
    assert [line["level"] for line in lines] == ["WARNING"]
    assert "the fake broker is down" in lines[0]["message"] and "exception" not in lines[0]


def test_the_relay_outlives_an_unknown_error_reports_it_once_and_drains_after(
    log_lines: LogLines,
) -> None:
    settings = Settings(_env_file=None, outbox_poll_seconds=0.01)
    add_events(settings, 1, 2, age=timedelta(minutes=10))
    broker = BrokenBroker()
    failed = sample("messaging_outbox_relay_errors_total", error="RuntimeError")

    async def work() -> None:
        async with Database(settings).running() as sessions:
            relay = Relay(settings, sessions, cast(Broker, broker))
            async with relay.running():
                errors = "messaging_outbox_relay_errors_total"
                await until(lambda: sample(errors, error="RuntimeError") >= failed + 3)
                assert sample("messaging_outbox_pending") == 2  # measured while failing
                assert sample("messaging_outbox_oldest_pending_age_seconds") >= 600
                broker.mended = True
                relay.wake()
                await until(lambda: sample("messaging_outbox_pending") == 0)
            assert sample("messaging_outbox_oldest_pending_age_seconds") == 0

    run_async(work())
    assert sorted(json.loads(m.body)["id"] for _, _, m in broker.published) == [1, 2]
    assert count(settings, OutboxRow, published_at=None) == 0
    lines = [line for line in log_lines() if line["message"].startswith("outbox relay")]
    assert [line["level"] for line in lines] == ["ERROR", "INFO"]  # once per outage
    assert "RuntimeError: a bug in the publishing code" in lines[0]["message"]
    assert "Traceback" in lines[0]["exception"]
    assert "recovered" in lines[1]["message"]


# One uvicorn worker's relay, as far as its gauges go: it measured `argv[1]` events waiting.
MEASURED = """
import sys
from {{ cookiecutter.package_name }}.messaging.outbox import OLDEST_AGE, PENDING

PENDING.set(int(sys.argv[1]))
OLDEST_AGE.set(int(sys.argv[1]) * 10)
"""


def test_the_backlog_gauges_are_one_series_whatever_the_number_of_workers(
    tmp_path: Path,
) -> None:
    """Every worker's relay measures the same table: /metrics shows the highest, not a sum."""
    shared = tmp_path / "metrics"  # of its own: the test's SQLite file is in tmp_path
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    for pending in ("3", "5"):
        subprocess.run([sys.executable, "-c", MEASURED, pending], env=env, check=True)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(shared))  # type: ignore[no-untyped-call]
    gauges = sorted(
        (sample.name, sample.labels, sample.value)
        for family in registry.collect()
        if family.type == "gauge" and family.name.startswith("messaging_outbox_")
        for sample in family.samples
    )
    assert gauges == [
        ("messaging_outbox_oldest_pending_age_seconds", {}, 50.0),
        ("messaging_outbox_pending", {}, 5.0),
    ]


class Overlapping(Handled):
    """A handler slow enough for a second delivery to arrive while it runs; with `fail_first`
    its first run fails."""

    def __init__(self, fail_first: bool = False) -> None:
        super().__init__()
        self.fail_first = fail_first
        self.runs = self.running = self.most_at_once = 0

    async def __call__(self, event: Event, *_: Any) -> None:
        self.runs += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.2)
            if self.fail_first and self.runs == 1:
                raise RuntimeError("the first run failed")
            self.ids.append(event.id)
        finally:
            self.running -= 1


def test_two_deliveries_of_one_message_at_once_run_the_handler_once(
    settings: Settings, log_lines: LogLines
) -> None:
    handler = Overlapping()
    first, again = delivery(message_id="m-2"), delivery(message_id="m-2", redelivered=True)
    broker = consume(settings, handler, first, again, at_once=True)
    assert handler.runs == 1 and handler.ids == ["m-2"]
    assert cast(FakeDelivery, first).acked == 1 and cast(FakeDelivery, again).acked == 1
    assert broker.published == []  # no failure, no retry
    outcomes = [line["message"] for line in log_lines() if line.get("message_id") == "m-2"]
    assert sorted(outcomes) == ["duplicate", "handled"]
    assert count(settings, ProcessedMessage, message_id="m-2") == 1


def test_a_claim_rolled_back_with_its_failed_handler_lets_the_other_delivery_run_it(
    settings: Settings,
) -> None:
    handler = Overlapping(fail_first=True)
    broker = consume(
        settings, handler, delivery(message_id="m-3"), delivery(message_id="m-3"), at_once=True
    )
    assert handler.runs == 2 and handler.most_at_once == 1  # one after the other
    assert handler.ids == ["m-3"]
    assert [routing_key for _, routing_key, _ in broker.published] == [retry_queue(settings, 1)]
    assert count(settings, ProcessedMessage, message_id="m-3") == 1
{%- elif cookiecutter.include_examples %}


def test_a_write_is_refused_with_a_503_before_it_happens_when_the_broker_is_down(
    client: TestClient, settings: Settings
) -> None:
    publisher = Publisher(settings, cast(Broker, FakeBroker(down=True)))
    client.app.dependency_overrides[get_events] = lambda: publisher  # type: ignore[attr-defined]
    assert client.post(URL, json={"name": "", "price": 1}).status_code == 422  # the body first
    refused = client.post(URL, json={"name": "Not now", "price": 1})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "2"
    assert refused.headers["content-type"] == "application/problem+json"
    assert client.get(URL).json() == []  # nothing was written


def test_each_write_publishes_its_event_with_the_article(
    client: TestClient, settings: Settings
) -> None:
    broker = FakeBroker()
    publisher = Publisher(settings, cast(Broker, broker))
    client.app.dependency_overrides[get_events] = lambda: publisher  # type: ignore[attr-defined]
    created = client.post(URL, json={"name": "Sent", "price": 1}).json()
    client.put(f"{URL}/{created['id']}", json={"name": "Sent", "price": 2})
    client.delete(f"{URL}/{created['id']}")
    assert [routing_key for _, routing_key, _ in broker.published] == [
        "article.created",
        "article.updated",
        "article.deleted",
    ]
    assert json.loads(broker.published[1][2].body)["price"] == 2


class BrokerLostAfterTheWrite(FakeBroker):
    async def publish(
        self, message: aio_pika.Message, routing_key: str, exchange: str = ""
    ) -> None:
        raise BrokerUnavailable("ConnectionResetError")


def test_an_event_that_cannot_be_published_after_the_write_is_logged_lost(
    client: TestClient, settings: Settings, log_lines: LogLines
) -> None:
    """The write stands (it is done); the README says this event is lost."""
    publisher = Publisher(settings, cast(Broker, BrokerLostAfterTheWrite()))
    client.app.dependency_overrides[get_events] = lambda: publisher  # type: ignore[attr-defined]
    created = client.post(URL, json={"name": "Unsent", "price": 1})
    assert created.status_code == 201
    lost = [line for line in log_lines() if line["message"] == "event lost"]
    assert [line["event"] for line in lost] == ["article.created"]
{%- endif %}
{%- if cookiecutter.include_examples and cookiecutter.database == "none" %}


def test_the_real_server_without_its_broker_refuses_writes_with_a_503(server: Server) -> None:
    if TEST_BROKER_URL:
        pytest.skip("TEST_BROKER_URL is set: the broker is up")
    refused = httpx2.post(
        f"{server.url}{URL}", json={"name": "Later", "price": 1}, headers=server.headers
    )
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "2"
    assert httpx2.get(f"{server.url}{URL}").status_code == 200  # reads need no broker
{%- endif %}
