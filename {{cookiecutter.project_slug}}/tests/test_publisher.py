"""Without a database, each write publishes its event right after it is done (the publisher),
against a fake broker; and the real server without its broker refuses writes with a 503."""

import json
from typing import cast

import aio_pika
import httpx2
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.messaging.broker import Broker, BrokerUnavailable
from {{ cookiecutter.package_name }}.messaging.publisher import Publisher, get_events
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import TEST_BROKER_URL, LogLines, Server
from .fake_broker import FakeBroker

URL = "/api/v1/articles"


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


def test_the_real_server_without_its_broker_refuses_writes_with_a_503(server: Server) -> None:
    if TEST_BROKER_URL:
        pytest.skip("TEST_BROKER_URL is set: the broker is up")
    refused = httpx2.post(
        f"{server.url}{URL}", json={"name": "Later", "price": 1}, headers=server.headers
    )
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "2"
    assert httpx2.get(f"{server.url}{URL}").status_code == 200  # reads need no broker
