"""The messaging option against a real RabbitMQ: a private node started for the session on free
ports, the real service (`python -m`) and its real worker (`python -m <package>.worker`). Events
flow from a write to the worker; the broker stopped while articles are written; the worker
killed in the middle of a message; a poison message. The outbox's checks serve from a real
PostgreSQL. They run once per way events leave (an outbox, or a publish after the write), in
the first combination of each (tests/combinations.py), not in every combination."""

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from .combinations import COMBINATIONS, first_with_messaging
from .conftest import JWT_SECRET, Baked, issue_token, run
from .dashboards import unexported
from .rabbitmq import RabbitMQ
from .served import Service, free_port, running
from .postgres import database_name
from .test_database import Postgres, migrated, migrated_copy, postgres  # noqa: F401
from .test_observability import needs

serving = contextmanager(running)
URL = "/api/v1/articles"


def on_messaging(request: pytest.FixtureRequest, installed: Baked, database: str) -> Baked:
    if installed.context["messaging"] != "rabbitmq":
        pytest.skip("messaging=none")
    if installed.context["database"] != database:
        pytest.skip(f"database={installed.context['database']}")
    if request.node.callspec.params["baked"] != COMBINATIONS.get(first_with_messaging(database) or ""):
        pytest.skip("the real-RabbitMQ checks run in one combination per way events leave")
    if not installed.context["include_examples"]:
        pytest.skip("include_examples is off: no article events")
    return installed


def writer_settings(baked: Baked) -> tuple[dict[str, str], dict[str, str]]:
    """The settings and headers that let the tests write articles under the bake's auth."""
    prefix = baked.package.upper()
    if baked.context["auth"] == "jwt":
        token = issue_token(baked, "writer", "articles:write")
        return {f"{prefix}_JWT_SECRET": JWT_SECRET}, {"Authorization": f"Bearer {token}"}
    if baked.context["auth"] == "api_key":
        import hashlib

        key = "a-writer-key-of-the-template-tests"
        digest = hashlib.sha256(key.encode()).hexdigest()
        return {f"{prefix}_API_KEY_DIGESTS": f"writer:{digest}"}, {"X-API-Key": key}
    return {}, {}


@dataclass
class Stack:
    """The service and its worker on one broker (and, with the outbox, one database)."""

    baked: Baked
    env: dict[str, str]
    headers: dict[str, str]
    service: Service
    workers: list[Service] = field(default_factory=list)
    metrics_port: int = 0

    def start_worker(self) -> Service:
        env = {**os.environ, **self.env}
        process = subprocess.Popen(
            [str(self.baked.path / ".venv" / "bin" / "python"), "-m", f"{self.baked.package}.worker"],
            cwd=self.baked.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        worker = Service(process, "")
        self.workers.append(worker)
        wait_until(lambda: any('"message": "consuming"' in line for line in worker.output), worker)
        return worker

    def lines(self) -> list[dict[str, Any]]:
        """Every worker's JSON log lines so far."""
        parsed = []
        for worker in self.workers:
            for line in list(worker.output):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line of a span printed by TRACE_CONSOLE
                if isinstance(entry, dict) and "message" in entry:
                    parsed.append(entry)
        return parsed

    def handled(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["message"] == "handled"]

    def post(self, name: str, **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.service.url}{URL}",
            json={"name": name, "price": 1},
            headers={**self.headers, **headers},
            timeout=30,
        )


def wait_until(condition: Callable[[], bool], process: Service | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.process.poll() is not None:
            pytest.fail("the worker exited:\n" + "".join(process.output)[-4000:])
        if time.monotonic() > deadline:
            output = "".join(process.output)[-4000:] if process else ""
            pytest.fail(f"timed out waiting\n{output}")
        time.sleep(0.1)


@contextmanager
def stack(baked: Baked, rabbitmq: RabbitMQ, extra: dict[str, str]) -> Iterator[Stack]:
    prefix = baked.package.upper()
    auth, headers = writer_settings(baked)
    metrics_port = free_port()
    # A queue and an exchange of the test's own: nothing left from another test reaches it.
    run_id = uuid.uuid4().hex[:8]
    env = {
        f"{prefix}_BROKER_URL": rabbitmq.url,
        f"{prefix}_BROKER_EXCHANGE": f"events-{run_id}",
        f"{prefix}_BROKER_QUEUE": f"worker-{run_id}",
        f"{prefix}_BROKER_ATTEMPTS": "3",
        f"{prefix}_BROKER_RETRY_SECONDS": "0.2",
        f"{prefix}_OUTBOX_POLL_SECONDS": "0.2",
        f"{prefix}_WORKER_METRICS_PORT": str(metrics_port),
        f"{prefix}_RATE_LIMIT_DEFAULT": "100000/minute",
        f"{prefix}_RATE_LIMIT_WRITE": "100000/minute",
        f"{prefix}_LOG_FORMAT": "json",
        f"{prefix}_ACCESS_LOG": "false",
        f"{prefix}_TRACE_CONSOLE": "true",  # a tracer in both processes, so the trace carries
        f"{prefix}_TRACE_SAMPLE_RATIO": "1",
        **auth,
        **extra,
    }
    with serving(baked.path, baked.package, env) as service:
        running_stack = Stack(baked, env, headers, service, metrics_port=metrics_port)
        try:
            yield running_stack
        finally:
            for worker in running_stack.workers:
                if worker.process.poll() is None:
                    worker.stop()
    assert "unhandled" not in "".join(service.output)  # no 500 on the way


@pytest.fixture
def outbox_stack(
    request: pytest.FixtureRequest,
    installed: Baked,
    rabbitmq: RabbitMQ,
    postgres: Postgres,  # noqa: F811
    migrated: list[str],  # noqa: F811
) -> Iterator[tuple[Stack, Postgres, str]]:
    baked = on_messaging(request, installed, "postgresql")
    url = migrated_copy(baked, postgres, migrated)
    prefix = baked.package.upper()
    extra = {
        f"{prefix}_DATABASE_URL": url,
        f"{prefix}_DATABASE_STATEMENT_TIMEOUT_SECONDS": "60",  # the lock test holds a lock
    }
    with stack(baked, rabbitmq, extra) as running_stack:
        yield running_stack, postgres, database_name(url)


def test_events_flow_from_each_write_to_the_worker_on_the_same_trace(
    outbox_stack: tuple[Stack, Postgres, str],
) -> None:
    events, postgres, name = outbox_stack
    worker = events.start_worker()
    trace_id = uuid.uuid4().hex
    created = events.post("Traced", traceparent=f"00-{trace_id}-{'1' * 16}-01")
    assert created.status_code == 201
    path = f"{events.service.url}{created.headers['location']}"
    body = {"name": "Traced", "price": 2}
    assert httpx.put(path, json=body, headers=events.headers).status_code == 200
    assert httpx.delete(path, headers=events.headers).status_code == 204
    wait_until(lambda: len(events.handled()) == 3, worker)
    handled = events.handled()
    assert [line["event"] for line in handled] == [
        "article.created", "article.updated", "article.deleted",
    ]  # fmt: skip
    assert handled[0]["trace_id"] == trace_id  # the worker's span continues the request's
    published = "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
    assert postgres.sql(published, name) == "3"
    assert postgres.sql("SELECT count(*) FROM processed_messages", name) == "3"
    metrics = httpx.get(f"http://127.0.0.1:{events.metrics_port}/metrics").text
    assert 'messaging_consumed_total{event="article.created"} 1.0' in metrics
    worker.stop()  # SIGTERM: it stops consuming, finishes what it holds, exits 0
    assert worker.process.returncode == 0
    assert any(line["message"] == "stopped" for line in events.lines())


def test_the_broker_stopped_never_fails_a_write_and_every_event_arrives_once(
    outbox_stack: tuple[Stack, Postgres, str], rabbitmq: RabbitMQ
) -> None:
    events, postgres, name = outbox_stack
    worker = events.start_worker()
    rabbitmq.stop()
    try:
        statuses = [events.post(f"While down {n}").status_code for n in range(20)]
        assert statuses == [201] * 20  # the outbox keeps them
        unpublished = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        assert postgres.sql(unpublished, name) == "20"
    finally:
        rabbitmq.start()
    wait_until(lambda: len(events.handled()) >= 20, worker, timeout=120)
    time.sleep(1)  # any duplicate would show by now
    ids = [line["message_id"] for line in events.handled()]
    assert len(ids) == len(set(ids)) == 20
    assert postgres.sql("SELECT count(*) FROM processed_messages", name) == "20"
    assert postgres.sql(unpublished, name) == "0"


WAITING = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"


@contextmanager
def table_locked(postgres: Postgres, name: str, mode: str) -> Iterator[None]:
    """processed_messages locked in `mode` by another session, for as long as the block runs."""
    psql = [str(postgres.bin / "psql"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U",
            "postgres", "-d", name, "-XAtq"]  # fmt: skip
    lock = f"BEGIN; LOCK TABLE processed_messages IN {mode} MODE; SELECT pg_sleep(120);"
    holder = subprocess.Popen([*psql, "-c", lock], stdout=subprocess.DEVNULL)
    release = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()"
    )
    try:
        wait_until(lambda: "processed_messages" in postgres.sql(LOCKS, name))
        yield
    finally:
        postgres.sql(release)
        holder.wait(timeout=30)


LOCKS = (
    "SELECT string_agg(relation::regclass::text, ',') FROM pg_locks "
    "WHERE granted AND relation IS NOT NULL AND pid <> pg_backend_pid()"
)


def test_a_worker_killed_in_the_middle_of_a_message_leaves_it_to_the_next_once(
    outbox_stack: tuple[Stack, Postgres, str],
) -> None:
    events, postgres, name = outbox_stack
    assert [events.post(f"Killed {n}").status_code for n in range(5)] == [201] * 5
    # The worker's handler blocks on this lock, its messages in hand and not acked.
    with table_locked(postgres, name, "ACCESS EXCLUSIVE"):
        first = events.start_worker()
        wait_until(lambda: postgres.sql(WAITING) != "0", first)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
    assert events.handled() == []  # nothing was acknowledged
    second = events.start_worker()
    wait_until(lambda: len(events.handled()) >= 5, second)
    time.sleep(1)
    handled = events.handled()
    assert len({line["message_id"] for line in handled}) == len(handled) == 5
    assert any(line["redelivered"] for line in handled)  # the broker gave them back
    assert postgres.sql("SELECT count(*) FROM processed_messages", name) == "5"


PUBLISH_POISON = """
import asyncio, json, sys
import aio_pika

async def main(url, exchange):
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    body = json.dumps({"id": "not a number"}).encode()
    message = aio_pika.Message(body, message_id="poison-1", type="article.created")
    await target.publish(message, "article.created")
    await connection.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""

COUNT_QUEUE = """
import asyncio, sys
import aio_pika

async def main(url, queue):
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, durable=True, passive=True)
    print(declared.declaration_result.message_count)
    await connection.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_a_poison_message_is_dead_lettered_after_its_attempts_and_the_queue_flows_on(
    outbox_stack: tuple[Stack, Postgres, str], rabbitmq: RabbitMQ
) -> None:
    events, _, _ = outbox_stack
    worker = events.start_worker()
    prefix = events.baked.package.upper()
    python = str(events.baked.path / ".venv" / "bin" / "python")
    exchange, queue = events.env[f"{prefix}_BROKER_EXCHANGE"], events.env[f"{prefix}_BROKER_QUEUE"]
    run([python, "-c", PUBLISH_POISON, rabbitmq.url, exchange], events.baked.path)
    assert events.post("After the poison").status_code == 201
    wait_until(lambda: any(line["message"] == "dead-lettered" for line in events.lines()), worker)
    poison = [line for line in events.lines() if line.get("message_id") == "poison-1"]
    assert [line["message"] for line in poison] == [
        "failed, will retry", "failed, will retry", "dead-lettered",
    ]  # fmt: skip
    assert [line["event"] for line in events.handled()] == ["article.created"]
    dead = run([python, "-c", COUNT_QUEUE, rabbitmq.url, f"{queue}.dead"], events.baked.path)
    assert dead.stdout.strip() == "1"
    metrics = httpx.get(f"http://127.0.0.1:{events.metrics_port}/metrics").text
    assert 'messaging_dead_lettered_total{event="article.created"} 1.0' in metrics
    assert 'messaging_failed_total{event="article.created"} 3.0' in metrics
    assert unexported(events.baked, metrics, worker=True) == {}  # the worker's dashboard


@pytest.fixture
def service_role_stack(
    request: pytest.FixtureRequest,
    installed: Baked,
    rabbitmq: RabbitMQ,
    postgres: Postgres,  # noqa: F811
    migrated: list[str],  # noqa: F811
) -> Iterator[tuple[Stack, Postgres, str, str]]:
    """The outbox stack served by a role of its own that owns nothing and is no superuser, as
    in production: what is revoked from it takes effect."""
    baked = on_messaging(request, installed, "postgresql")
    url = migrated_copy(baked, postgres, migrated)
    name, role = database_name(url), f"service_{uuid.uuid4().hex[:8]}"
    postgres.sql(f"CREATE ROLE {role} LOGIN")
    postgres.sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}", name)
    postgres.sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}", name)
    extra = {f"{baked.package.upper()}_DATABASE_URL": url.replace("//postgres@", f"//{role}@")}
    with stack(baked, rabbitmq, extra) as running_stack:
        yield running_stack, postgres, name, role


def service_lines(events: Stack) -> list[dict[str, Any]]:
    """The service's JSON log lines so far."""
    parsed = []
    for line in list(events.service.output):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "message" in entry:
            parsed.append(entry)
    return parsed


def metric(text: str, series: str) -> float:
    """The value of one series in a /metrics text, 0 when it is absent."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(series + " ")]
    return values[0] if values else 0.0


def test_the_relay_outlives_a_revoked_privilege_and_every_event_arrives_once_after_the_grant(
    service_role_stack: tuple[Stack, Postgres, str, str],
) -> None:
    events, postgres, name, role = service_role_stack
    worker = events.start_worker()
    postgres.sql(f"REVOKE UPDATE, DELETE ON outbox FROM {role}", name)  # FOR UPDATE needs UPDATE
    assert [events.post(f"Revoked {n}").status_code for n in range(5)] == [201] * 5
    errors = 'messaging_outbox_relay_errors_total{error="InsufficientPrivilegeError"}'

    def scraped() -> str:
        return httpx.get(f"{events.service.url}/metrics", headers=events.headers).text

    wait_until(lambda: metric(scraped(), errors) >= 3 and metric(scraped(), "messaging_outbox_pending") == 5)
    assert metric(scraped(), "messaging_outbox_oldest_pending_age_seconds") > 0
    failed = [line for line in service_lines(events) if line["message"].startswith("outbox relay failed")]
    assert len(failed) == 1, failed  # once for the outage, not once per pass
    assert failed[0]["level"] == "ERROR"
    assert "permission denied for table outbox" in failed[0]["message"]
    assert "InsufficientPrivilegeError" in failed[0]["exception"]  # the traceback, with its cause
    assert events.handled() == []
    postgres.sql(f"GRANT UPDATE, DELETE ON outbox TO {role}", name)
    wait_until(lambda: len(events.handled()) >= 5, worker)
    time.sleep(1)  # any duplicate would show by now
    ids = [line["message_id"] for line in events.handled()]
    assert len(ids) == len(set(ids)) == 5
    assert postgres.sql("SELECT count(*) FROM processed_messages", name) == "5"
    wait_until(lambda: metric(scraped(), "messaging_outbox_pending") == 0)
    assert any(line["message"].startswith("outbox relay recovered") for line in service_lines(events))


PUBLISH_TWICE = """
import asyncio, json, sys
import aio_pika

async def main(url, exchange, message_id):
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    body = json.dumps({"id": 1, "version": 1}).encode()
    for _ in range(2):
        message = aio_pika.Message(body, message_id=message_id, type="article.created")
        await target.publish(message, "article.created")
    await connection.close()

asyncio.run(main(*sys.argv[1:]))
"""


def test_two_deliveries_of_one_message_at_once_run_the_handler_once(
    outbox_stack: tuple[Stack, Postgres, str], rabbitmq: RabbitMQ
) -> None:
    events, postgres, name = outbox_stack
    worker = events.start_worker()  # BROKER_PREFETCH (16): both deliveries in hand at once
    prefix = events.baked.package.upper()
    python = str(events.baked.path / ".venv" / "bin" / "python")
    message_id = f"twice-{uuid.uuid4().hex[:8]}"
    # Both deliveries' transactions wait on this lock at their first write: released, they race.
    with table_locked(postgres, name, "SHARE"):
        exchange = events.env[f"{prefix}_BROKER_EXCHANGE"]
        run([python, "-c", PUBLISH_TWICE, rabbitmq.url, exchange, message_id], events.baked.path)
        wait_until(lambda: int(postgres.sql(WAITING)) >= 2, worker)
    wait_until(lambda: len([line for line in events.lines() if line.get("message_id") == message_id]) >= 2, worker)
    time.sleep(1)  # a retry would show by now
    outcomes = [line["message"] for line in events.lines() if line.get("message_id") == message_id]
    assert sorted(outcomes) == ["duplicate", "handled"]  # not "failed, will retry"
    assert postgres.sql(f"SELECT count(*) FROM processed_messages WHERE message_id = '{message_id}'", name) == "1"
    metrics = httpx.get(f"http://127.0.0.1:{events.metrics_port}/metrics").text
    assert metric(metrics, 'messaging_consumed_total{event="article.created"}') == 1
    assert metric(metrics, "messaging_duplicates_total") == 1


BACKLOG_AND_DEAD_LETTERS = """
rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'messaging_outbox_oldest_pending_age_seconds{{job="{slug}", instance="a"}}'
        values: '0 0 60 120 180 240 300 360 420 480'
      - series: 'messaging_dead_lettered_total{{job="{slug}-worker", instance="w", event="article.created"}}'
        values: '_ _ _ 1x20 2x10'
      - series: 'messaging_dead_lettered_total{{job="{slug}-worker", instance="w", event="article.deleted"}}'
        values: '0x30'
    alert_rule_test:
      - {{alertname: OutboxBacklog, eval_time: 7m, exp_alerts: []}}
      - alertname: OutboxBacklog
        eval_time: 9m
        exp_alerts:
          - exp_labels: {{severity: critical}}
            exp_annotations: {{summary: "The oldest unpublished outbox event has waited 8m 0s"}}
      - {{alertname: MessagesDeadLettered, eval_time: 2m, exp_alerts: []}}
      - alertname: MessagesDeadLettered
        eval_time: 4m
        exp_alerts:
          - exp_labels: {{severity: warning, event: article.created}}
            exp_annotations: {{summary: "article.created messages were dead-lettered in the last 10 minutes"}}
      - {{alertname: MessagesDeadLettered, eval_time: 20m, exp_alerts: []}}
      - alertname: MessagesDeadLettered
        eval_time: 25m
        exp_alerts:
          - exp_labels: {{severity: warning, event: article.created}}
            exp_annotations: {{summary: "article.created messages were dead-lettered in the last 10 minutes"}}
"""


def test_the_alerts_fire_on_an_old_outbox_backlog_and_on_new_dead_letters(baked: Baked) -> None:
    """promtool's rule tests: the backlog after five minutes; a dead letter at once, the first
    of a new worker (a new series) too, and no longer once ten minutes pass without one."""
    if baked.context["messaging"] != "rabbitmq" or baked.context["database"] == "none":
        pytest.skip("no outbox")
    promtool = needs("promtool")
    deploy = baked.path / "deploy" / "prometheus"
    tests = deploy / "alerts.test.yml"
    tests.write_text(BACKLOG_AND_DEAD_LETTERS.format(slug=baked.context["project_slug"]))
    try:
        run([promtool, "test", "rules", tests.name], deploy)
    finally:
        tests.unlink()


@pytest.fixture
def direct_stack(
    request: pytest.FixtureRequest, installed: Baked, rabbitmq: RabbitMQ
) -> Iterator[Stack]:
    baked = on_messaging(request, installed, "none")
    with stack(baked, rabbitmq, {}) as running_stack:
        yield running_stack


def test_without_a_database_the_broker_down_is_a_503_and_writes_resume_by_themselves(
    direct_stack: Stack, rabbitmq: RabbitMQ
) -> None:
    events = direct_stack
    worker = events.start_worker()
    assert events.post("Before").status_code == 201
    rabbitmq.stop()
    try:
        refused = events.post("During")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "2"
        assert refused.headers["content-type"] == "application/problem+json"
    finally:
        rabbitmq.start()
    deadline = time.monotonic() + 30
    while events.post("After").status_code != 201:
        assert time.monotonic() < deadline, "writes did not resume"
        time.sleep(0.5)
    wait_until(lambda: len(events.handled()) == 2, worker, timeout=180)  # reconnects back off to 30 s
    names = httpx.get(f"{events.service.url}{URL}").json()
    assert sorted(article["name"] for article in names) == ["After", "Before"]  # not "During"
    metrics = httpx.get(f"http://127.0.0.1:{events.metrics_port}/metrics").text
    assert unexported(events.baked, metrics, worker=True) == {}  # the worker's dashboard
