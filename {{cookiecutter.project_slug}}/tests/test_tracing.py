"""Tracing through the app, with an in-memory span exporter: a request's span, the sampling
decision, outbound calls, the exporters chosen and flushed."""

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from {{ cookiecutter.package_name }}.observability.middleware import ObservabilityMiddleware
from {{ cookiecutter.package_name }}.observability.tracing import (
    TracedTransport,
    Tracing,
    make_processors,
)
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import free_port
from .probe_app import TRACE_ID, build, served


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
