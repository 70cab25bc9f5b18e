"""The worker's consuming loop (worker.consume) on a stand-in broker: it waits and tries again
while the broker is away, consumes with the configured prefetch once it is there, consumes again
after losing it, and on stop takes no new messages. The template's tests run it on RabbitMQ."""

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from {{ cookiecutter.package_name }}.messaging.broker import BrokerUnavailable
from {{ cookiecutter.package_name }}.messaging.consumer import Consumer
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings
from {{ cookiecutter.package_name }}.worker import consume

from .conftest import run_async


class FakeQueue:
    def __init__(self) -> None:
        self.consumers: list[Any] = []  # the callbacks, one per consume() call
        self.cancelled: list[str] = []

    async def consume(self, callback: Any) -> str:
        self.consumers.append(callback)
        return f"tag-{len(self.consumers)}"

    async def cancel(self, tag: str) -> None:
        self.cancelled.append(tag)


class FakeChannel:
    def __init__(self, queue: FakeQueue) -> None:
        self.queue = queue
        self.prefetch: list[int] = []
        self.declared: list[tuple[str, bool]] = []

    async def set_qos(self, prefetch_count: int) -> None:
        self.prefetch.append(prefetch_count)

    async def declare_queue(self, name: str, durable: bool) -> FakeQueue:
        self.declared.append((name, durable))
        return self.queue


class ComingBackBroker:
    """Away for its first `away` connection attempts, then there until `lose()`."""

    def __init__(self, away: int) -> None:
        self.away, self.attempts, self.lost = away, 0, False
        self.queue = FakeQueue()
        self.channel = FakeChannel(self.queue)

    @property
    def connected(self) -> bool:
        return self.attempts > self.away and not self.lost

    async def open(self) -> FakeChannel:
        self.attempts += 1
        self.lost = False
        if self.attempts <= self.away:
            raise BrokerUnavailable("ConnectionRefusedError: the fake broker is away")
        return self.channel

    def lose(self) -> None:
        self.lost = True


class FakeConsumer:
    def __init__(self, broker: ComingBackBroker) -> None:
        self.broker = broker

    async def on_message(self, message: Any) -> None:
        pass  # the consumer's own tests (test_messaging.py) handle messages


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def consuming(
    settings: Settings, broker: ComingBackBroker, then: Callable[[], Awaitable[None]] | None = None
) -> None:
    """consume() until it has a consumer on the queue (and `then` has run), then stops it."""
    stop = asyncio.Event()
    consumer = cast(Consumer, FakeConsumer(broker))
    task = asyncio.create_task(consume(settings, consumer, stop))
    await asyncio.wait_for(until(lambda: len(broker.queue.consumers) >= 1), 10)
    if then is not None:
        await then()
    stop.set()
    await asyncio.wait_for(task, 5)  # stops within its one-second check, not after


def test_it_waits_for_an_away_broker_then_consumes_with_the_prefetch_and_stops_cleanly(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    broker = ComingBackBroker(away=2)
    with caplog.at_level(logging.WARNING):
        run_async(consuming(settings, broker))
    assert broker.attempts == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("broker unavailable" in line for line in warnings)
    assert broker.channel.prefetch == [settings.broker_prefetch]
    assert broker.channel.declared == [(settings.broker_queue, True)]
    assert len(broker.queue.consumers) == 1
    assert broker.queue.cancelled == ["tag-1"]  # no new deliveries once stopped


def test_it_consumes_again_after_losing_the_broker(settings: Settings) -> None:
    broker = ComingBackBroker(away=0)

    async def lose_it() -> None:
        broker.lose()
        await until(lambda: len(broker.queue.consumers) == 2)

    run_async(consuming(settings, broker, then=lose_it))
    assert broker.attempts == 2
    assert broker.channel.prefetch == [settings.broker_prefetch] * 2
    assert broker.queue.cancelled == ["tag-2"]  # the lost channel's consumer went with it


def test_a_stop_while_the_broker_is_away_ends_the_wait(settings: Settings) -> None:
    broker = ComingBackBroker(away=1_000)
    stop = asyncio.Event()

    async def stop_soon() -> None:
        task = asyncio.create_task(consume(settings, cast(Consumer, FakeConsumer(broker)), stop))
        await until(lambda: broker.attempts >= 3)  # waiting 0.5 s, then 1 s, then 2 s...
        stop.set()
        await asyncio.wait_for(task, 1)  # ...but not once told to stop

    run_async(stop_soon())
    assert broker.queue.consumers == []


def test_a_busy_metrics_port_stops_the_worker_with_one_line_naming_the_setting() -> None:
    """9100, the default, is also node_exporter's."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {**os.environ, f"{ENV_PREFIX}HOST": "127.0.0.1"}
        env[f"{ENV_PREFIX}WORKER_METRICS_PORT"] = str(port)
        command = [sys.executable, "-m", "{{ cookiecutter.package_name }}.worker"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"ERROR: port {port} on 127.0.0.1: address already in use; set "
        f"{ENV_PREFIX}WORKER_METRICS_PORT to a free port or to 0 to turn the worker's metrics off"
    ]
