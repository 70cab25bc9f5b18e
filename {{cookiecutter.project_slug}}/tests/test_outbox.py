"""The transactional outbox without a broker: a write and its event commit together, the relay
publishes them in order and outlives its failures, and the worker's deduplication table runs a
message's handler once however it is delivered (the template's own tests run it against a real
RabbitMQ)."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aio_pika
import pytest
{%- if cookiecutter.include_examples %}
from fastapi.testclient import TestClient
{%- endif %}
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from {{ cookiecutter.package_name }}.db import Database
from {{ cookiecutter.package_name }}.messaging.broker import (
    Broker,
    BrokerUnavailable,
    retry_queue,
)
from {{ cookiecutter.package_name }}.messaging.dedup import ProcessedMessage
from {{ cookiecutter.package_name }}.messaging.events import Event, article_event
from {{ cookiecutter.package_name }}.messaging.outbox import OutboxRow, Relay
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import LogLines, run_async
from .deliveries import FakeDelivery, Handled, consume, delivery, sample
from .fake_broker import FakeBroker
{%- if cookiecutter.include_examples %}

URL = "/api/v1/articles"
{%- endif %}


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
