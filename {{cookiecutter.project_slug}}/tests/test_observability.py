"""Metrics, tracing and the access log, through the app, with an in-memory span exporter."""

import json
import logging
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from opentelemetry import context, trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.observability import metrics
from {{ cookiecutter.package_name }}.observability.logging import JsonFormatter
from {{ cookiecutter.package_name }}.observability.middleware import ObservabilityMiddleware
from {{ cookiecutter.package_name }}.observability.tracing import (
    TracedTransport,
    Tracing,
    make_processors,
)
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
probe = APIRouter(prefix="/probe")


@probe.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    logging.getLogger("probe").warning("inside the request")
    return {"item_id": item_id}


@probe.get("/fail")
async def fail() -> None:
    raise RuntimeError("boom")


@probe.get("/call")
async def call(request: Request) -> dict[str, Any]:
    transport = TracedTransport(httpx2.AsyncHTTPTransport(), request.app.state.tracing.provider)
    async with httpx2.AsyncClient(transport=transport) as client:
        response = await client.get(request.app.state.upstream_url + "/seen?secret=1")
    result: dict[str, Any] = response.json()
    return result


def requests_count(handler: str, status: str = "2xx", method: str = "GET") -> float:
    labels = {"method": method, "handler": handler, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Each test's app has its own provider (app.state.tracing): the exporter is added to it."""
    return InMemorySpanExporter()


class Collect(logging.Handler):
    """Formats each record when it is logged, inside the request, as the real handler does."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(JsonFormatter().format(record)))


@contextmanager
def collected(name: str) -> Iterator[list[dict[str, Any]]]:
    """The lines `name` logs; enter it after create_app, which sets the handlers up."""
    handler = Collect()
    logging.getLogger(name).addHandler(handler)
    yield handler.lines
    logging.getLogger(name).removeHandler(handler)


def build(spans: InMemorySpanExporter | None = None, **settings: Any) -> FastAPI:
    # JSON lines: the tests read what the app logs as data.
    app = create_app(Settings(_env_file=None, **{"log_format": "json", **settings}))
    if spans is not None:
        app.state.tracing.extra_processors.append(SimpleSpanProcessor(spans))
    app.include_router(probe)
    return app


def served(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def test_requests_are_counted_by_route_template_and_status_class() -> None:
    before = requests_count("/probe/items/{item_id}")
    before_404 = requests_count("/probe/items/{item_id}", "4xx")
    with served(build()) as client:
        client.get("/probe/items/1")
        client.get("/probe/items/2")
        client.get("/probe/items/not-a-number")
        text = client.get("/metrics").text
    assert requests_count("/probe/items/{item_id}") == before + 2
    assert requests_count("/probe/items/{item_id}", "4xx") == before_404 + 1
    assert "/probe/items/1" not in text
    assert 'http_request_duration_seconds_bucket{handler="/probe/items/{item_id}"' in text
    assert "process_cpu_seconds_total" in text


def test_unmatched_paths_are_grouped_and_probes_are_not_counted() -> None:
    before = requests_count("none", "4xx")
    with served(build()) as client:
        client.get("/no/such/page")
        client.get("/another/missing/one")
        client.get("/health/live")
        client.get("/metrics")
        text = client.get("/metrics").text
    assert requests_count("none", "4xx") == before + 2
    assert 'handler="/health/live"' not in text
    assert 'handler="/metrics"' not in text


def test_unhandled_errors_count_as_5xx_and_the_docs_by_their_path() -> None:
    before = requests_count("/probe/fail", "5xx")
    before_docs = requests_count("/docs")
    with served(build()) as client:
        assert client.get("/probe/fail").status_code == 500
        assert client.get("/docs").status_code == 200
    assert requests_count("/probe/fail", "5xx") == before + 1
    assert requests_count("/docs") == before_docs + 1


def test_a_metrics_token_protects_the_endpoint() -> None:
    with served(build(metrics_token="s3cret")) as client:
        refused = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        allowed = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert refused.status_code == wrong.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"] == "Bearer"
    assert allowed.status_code == 200


def test_service_metrics_are_recorded() -> None:
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    retries = value("upstream_retries_total", upstream="prices")
    metrics.record_retry("prices")
    metrics.record_bulkhead_rejection("prices")
    metrics.record_rate_limited()
    metrics.record_breaker_state("prices", "open")
    assert value("upstream_retries_total", upstream="prices") == retries + 1
    assert value("upstream_bulkhead_rejections_total", upstream="prices") >= 1
    assert value("http_rate_limited_total", limit="default") >= 1
    assert value("upstream_circuit_breaker_state", upstream="prices") == 2
    metrics.record_breaker_state("prices", "closed")
    assert value("upstream_circuit_breaker_state", upstream="prices") == 0


def test_several_workers_share_an_emptied_metrics_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv(metrics.MULTIPROC_DIR, str(tmp_path))
    metrics.prepare_multiprocess_dir(Settings(_env_file=None, workers=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_one_worker_needs_no_metrics_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_DIR, raising=False)
    metrics.prepare_multiprocess_dir(Settings(_env_file=None, workers=1))
    assert metrics.MULTIPROC_DIR not in __import__("os").environ


def test_several_workers_get_a_directory_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_DIR, raising=False)
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    metrics.prepare_multiprocess_dir(Settings(_env_file=None, workers=2, port=9123))
    directory = Path(__import__("os").environ.pop(metrics.MULTIPROC_DIR))
    assert directory.parent == tmp_path and directory.name.endswith("-metrics-9123")


def test_a_sampled_request_is_one_server_span_named_by_its_route(
    spans: InMemorySpanExporter,
) -> None:
    with served(build(spans, trace_sample_ratio=1.0)) as client:
        client.get("/probe/items/7")
        client.get("/health/live")
        client.get("/metrics")
    [span] = spans.get_finished_spans()  # FastAPI's own operation spans are off
    assert span.name == "GET /probe/items/{item_id}"
    assert span.kind == SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/probe/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.resource.attributes["service.name"] == "{{ cookiecutter.project_slug }}"
    assert span.resource.attributes["deployment.environment"] == "development"


@pytest.mark.anyio
async def test_the_span_is_no_longer_current_once_the_request_ends(
    spans: InMemorySpanExporter,
) -> None:
    """Called in this task, as a server calls it: what the middleware attached is detached."""
    tracing = Tracing(Settings(_env_file=None, trace_sample_ratio=1.0))
    tracing.extra_processors.append(SimpleSpanProcessor(spans))
    current: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        current.append(trace.get_current_span().is_recording())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        pass

    before = context.get_current()
    scope = {"type": "http", "method": "GET", "path": "/probe", "headers": []}
    middleware = ObservabilityMiddleware(app, tracing, Settings(_env_file=None))
    async with tracing.running():
        await middleware(scope, receive, send)
    assert current == [True] and len(spans.get_finished_spans()) == 1
    assert context.get_current() == before
    assert not trace.get_current_span().is_recording()


def test_a_500_is_logged_with_the_requests_trace_id(spans: InMemorySpanExporter) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "x-request-id": "req-500"}
    app = build(spans)
    with collected("{{ cookiecutter.package_name }}.errors") as lines:
        with served(app) as client:
            assert client.get("/probe/fail", headers=headers).status_code == 500
    [error] = lines
    assert (error["trace_id"], error["request_id"]) == (TRACE_ID, "req-500")


def test_a_failed_request_has_an_error_span(spans: InMemorySpanExporter) -> None:
    with served(build(spans, trace_sample_ratio=1.0)) as client:
        client.get("/probe/fail")
        client.get("/nowhere")
    failed, unmatched = spans.get_finished_spans()
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert unmatched.name == "GET"


def test_an_unsampled_request_makes_no_span_object(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build(spans, trace_sample_ratio=0.0)
    with served(app) as client:
        tracer = app.state.tracing.tracer
        monkeypatch.setattr(tracer, "start_span", lambda *a, **kw: pytest.fail("a span"))
        assert client.get("/probe/items/1").status_code == 200
    assert spans.get_finished_spans() == ()


def test_a_new_trace_is_decided_by_the_root_sampler_alone(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a parent, the parent-based sampler would only ask its root: asked directly."""
    app = build(spans, trace_sample_ratio=0.0)
    with served(app) as client:
        sampler = app.state.tracing.sampler
        monkeypatch.setattr(sampler, "should_sample", lambda *a, **kw: pytest.fail("asked"))
        assert client.get("/probe/items/1").status_code == 200
    assert spans.get_finished_spans() == ()


def test_the_incoming_parent_decides_and_its_trace_continues(
    spans: InMemorySpanExporter,
) -> None:
    sampled = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    unsampled = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-00"}
    with served(build(spans, trace_sample_ratio=0.0)) as client:
        client.get("/probe/items/1", headers=sampled)
    with served(build(spans, trace_sample_ratio=1.0)) as client:
        client.get("/probe/items/2", headers=unsampled)
    [span] = spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_new_traces_are_sampled_at_the_configured_ratio(spans: InMemorySpanExporter) -> None:
    with served(build(spans, trace_sample_ratio=0.5)) as client:
        for number in range(200):
            client.get(f"/probe/items/{number}")
    assert 50 < len(spans.get_finished_spans()) < 150


def test_a_new_trace_gets_the_sdk_samplers_decision(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The middleware decides on the id it drew; the span then carries that very id."""
    sampler = TraceIdRatioBased(0.25)
    drawn = [random.Random(seed).getrandbits(128) for seed in range(40)]  # the same every run
    sampled = Decision.RECORD_AND_SAMPLE
    expected = [i for i in drawn if sampler.should_sample(None, i, "GET").decision == sampled]
    app = build(spans, trace_sample_ratio=0.25)
    with served(app) as client:
        monkeypatch.setattr(app.state.tracing.ids, "draw", lambda: drawn[0])
        while drawn:
            client.get("/probe/items/1")
            drawn.pop(0)
    traced = [span.context.trace_id for span in spans.get_finished_spans()]
    assert traced == expected and 0 < len(expected) < 40


class Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.dumps({"traceparent": self.headers.get("traceparent")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_outbound_calls_get_a_child_span_and_carry_traceparent(
    spans: InMemorySpanExporter, upstream_url: str
) -> None:
    app = build(spans, trace_sample_ratio=1.0)
    app.state.upstream_url = upstream_url
    with served(app) as client:
        seen = client.get("/probe/call").json()["traceparent"]
    client_span, server_span = spans.get_finished_spans()
    assert client_span.kind == SpanKind.CLIENT
    assert client_span.parent is not None
    assert client_span.parent.span_id == server_span.context.span_id
    assert client_span.attributes is not None
    assert "secret" not in str(client_span.attributes["url.full"])
    version, trace_id, parent_id, flags = seen.split("-")
    assert (trace_id, parent_id) == (
        f"{server_span.context.trace_id:032x}",
        f"{client_span.context.span_id:016x}",
    )
    assert int(flags, 16) & 1  # sampled


def test_unsampled_outbound_calls_are_left_alone(
    spans: InMemorySpanExporter, upstream_url: str
) -> None:
    app = build(spans, trace_sample_ratio=0.0)
    app.state.upstream_url = upstream_url
    with served(app) as client:
        assert client.get("/probe/call").json()["traceparent"] is None
    assert spans.get_finished_spans() == ()


@pytest.mark.anyio
async def test_a_traced_transport_closes_its_inner_transport() -> None:
    inner = httpx2.MockTransport(lambda request: httpx2.Response(204))
    async with httpx2.AsyncClient(transport=TracedTransport(inner)) as client:
        assert (await client.get("http://upstream.test/")).status_code == 204


def access_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if line["logger"] == "access"]


def test_log_lines_and_the_access_line_carry_the_trace_ids(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "x-request-id": "req-7"}
    app = build(spans)
    with collected("probe") as app_lines:
        with served(app) as client:
            client.get("/probe/items/3", headers=headers)
            client.get("/health/live")
    [span] = spans.get_finished_spans()
    [inside] = app_lines
    assert inside["trace_id"] == TRACE_ID
    assert inside["span_id"] == f"{span.context.span_id:016x}"
    assert inside["request_id"] == "req-7"
    [access] = access_lines(capsys)
    assert access["trace_id"] == TRACE_ID
    assert access["request_id"] == "req-7"
    assert access["route"] == "/probe/items/{item_id}"
    assert access["method"] == "GET" and access["status"] == 200
    assert access["duration_ms"] >= 0 and access["client"] == "testclient"


def test_the_access_line_of_an_unmatched_path_names_the_path_but_never_its_query(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = requests_count("none", "4xx")
    long_path = "/x" * 100
    with served(build()) as client:
        client.get("/no/such/page?token=s3cret")
        client.get(long_path)
    missing, too_long = access_lines(capsys)
    assert (missing["route"], missing["status"]) == ("/no/such/page", 404)
    assert too_long["route"] == long_path[:100]  # bounded: a scanner's paths stay short
    assert requests_count("none", "4xx") == before + 2  # the metrics keep one label for them


def test_the_access_log_can_be_turned_off(capsys: pytest.CaptureFixture[str]) -> None:
    with served(build(access_log=False)) as client:
        client.get("/probe/items/3")
    assert access_lines(capsys) == []


def test_spans_are_flushed_at_shutdown_and_access_lines_at_once(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build(trace_sample_ratio=1.0)
    app.state.tracing.extra_processors.append(
        BatchSpanProcessor(spans, schedule_delay_millis=600_000)
    )
    with served(app) as client:
        client.get("/probe/items/5")
        assert spans.get_finished_spans() == ()
        assert '"route": "/probe/items/{item_id}"' in capsys.readouterr().out
    assert len(spans.get_finished_spans()) == 1


def test_no_exporter_no_tracing(spans: InMemorySpanExporter) -> None:
    app = build()
    with served(app):
        assert app.state.tracing.tracer is None


def test_otel_sdk_disabled_turns_tracing_off(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    app = build()
    with served(app):
        assert app.state.tracing.tracer is None


def test_an_otlp_endpoint_and_the_console_setting_choose_the_exporters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    processors = make_processors(Settings(_env_file=None, trace_console=True))
    exporters = [type(p.span_exporter).__name__ for p in processors]  # type: ignore[attr-defined]
    assert exporters == ["OTLPSpanExporter", "ConsoleSpanExporter"]
    for processor in processors:
        processor.shutdown()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert make_processors(Settings(_env_file=None)) == []


def test_otel_traces_sampler_replaces_the_default_sampler(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    app = build(spans, trace_sample_ratio=1.0)
    with served(app) as client:
        assert app.state.tracing.sampler.get_description() == "AlwaysOffSampler"
        client.get("/probe/items/1")
    assert spans.get_finished_spans() == ()
