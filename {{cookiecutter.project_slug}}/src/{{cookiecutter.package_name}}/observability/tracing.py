"""OpenTelemetry tracing: one server span per sampled request, named by its route template.

Configured by the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) turns
on OTLP/HTTP export; OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG replace the default sampler
(parent-based, TRACE_SAMPLE_RATIO of new traces); OTEL_SDK_DISABLED=true turns tracing off;
OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT... are read by the exporter. TRACE_CONSOLE=true prints
spans for development. With no exporter nothing is traced at all.

The sampling decision comes first, so an unsampled request creates no span and touches no
OpenTelemetry context. FastAPI's built-in tracing is off (main.py): it does span work for every
request, sampled or not, and adds spans per dependency. The provider is built in the lifespan:
once per worker, after any fork.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import Token

import httpx2
from fastapi.telemetry import TelemetryConfig
from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from starlette.types import Scope

from .. import __version__
from ..settings import Settings

# FastAPI traces by itself once an SDK provider is installed; the middleware's span is enough.
NATIVE_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
EMPTY_CONTEXT = context.Context()
W3C = TraceContextTextMapPropagator()
TRACE_HEADERS = (b"traceparent", b"tracestate")


class PresetTraceIds(RandomIdGenerator):
    """The middleware draws a new trace's id to decide on sampling; the SDK then uses that id,
    so its own sampler (deterministic on the id) reaches the same decision."""

    next_trace_id = 0

    def draw(self) -> int:
        return super().generate_trace_id()

    def generate_trace_id(self) -> int:
        trace_id, self.next_trace_id = self.next_trace_id, 0
        return trace_id or self.draw()


def exporting(settings: Settings) -> bool:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return bool(endpoint) and os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none"


def make_processors(settings: Settings) -> list[SpanProcessor]:
    processors: list[SpanProcessor] = []
    if exporting(settings):
        # Imported here: the exporter pulls in protobuf and requests, unused without it.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    if settings.trace_console:
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter()))
    return processors


class Tracing:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
        self.extra_processors: list[SpanProcessor] = []  # tests add an in-memory exporter
        self.ids = PresetTraceIds()
        self.provider: TracerProvider | None = None
        self.tracer: trace.Tracer | None = None
        self.sampler: Sampler | None = None
        self.root_sampler: Sampler | None = None  # what decides a new trace

    @asynccontextmanager
    async def running(self) -> AsyncIterator["Tracing"]:
        """For the lifespan: the provider while the app serves, flushed at shutdown."""
        self.start()
        try:
            yield self
        finally:
            self.shutdown()

    def start(self) -> None:
        """In the lifespan startup: the provider, its exporters and their threads."""
        processors = [] if self.disabled else make_processors(self.settings)
        processors += self.extra_processors
        if not processors:
            return
        settings = self.settings
        resource = Resource.create(
            {
                "service.name": settings.service_name,
                "service.version": __version__,
                "deployment.environment": settings.environment,
            }
        )
        # No sampler given: the SDK reads OTEL_TRACES_SAMPLER itself.
        ratio = TraceIdRatioBased(settings.trace_sample_ratio)
        sampler = None if "OTEL_TRACES_SAMPLER" in os.environ else ParentBased(ratio)
        provider = TracerProvider(
            sampler=sampler,
            resource=resource,
            id_generator=self.ids,
            shutdown_on_exit=False,
        )
        for processor in processors:
            provider.add_span_processor(processor)
        # Global, so spans started anywhere (trace_http_client, your code) join the trace;
        # OpenTelemetry allows one global per process, later calls only warn.
        trace.set_tracer_provider(provider)
        self.provider, self.sampler = provider, provider.sampler
        # Without a parent, ParentBased asks its root: the middleware asks the root directly.
        self.root_sampler = provider.sampler if sampler is None else ratio
        self.tracer = provider.get_tracer(__name__, __version__)

    def flush(self) -> None:
        """Exports what is buffered now: for a process that may be frozen between requests."""
        if self.provider is not None:
            self.provider.force_flush()

    def shutdown(self) -> None:
        """In the lifespan shutdown: exports what is buffered (atexit never runs under uvicorn)."""
        if self.provider is not None:
            self.provider.shutdown()
            self.provider = self.tracer = None

    def start_span(self, scope: Scope) -> tuple[Span, Token[context.Context]] | None:
        """The request's server span, made current until end_span; None (and nothing done)
        when unsampled."""
        tracer, sampler, root = self.tracer, self.sampler, self.root_sampler
        if tracer is None or sampler is None or root is None:
            return None
        incoming = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name in TRACE_HEADERS
        ]
        if incoming:
            parent = W3C.extract(dict(incoming))
            parent_span = trace.get_current_span(parent).get_span_context()
        else:  # a new trace: no parent to extract or look up
            parent, parent_span = EMPTY_CONTEXT, trace.INVALID_SPAN_CONTEXT
        if parent_span.is_valid:
            trace_id = parent_span.trace_id
        else:  # a new trace: its root sampler decides
            trace_id, sampler = self.ids.draw(), root
        decision = sampler.should_sample(parent, trace_id, scope["method"], SpanKind.SERVER)
        if decision.decision is not Decision.RECORD_AND_SAMPLE:
            return None
        return self.open_span(tracer, scope, parent, 0 if parent_span.is_valid else trace_id)

    def open_span(
        self, tracer: trace.Tracer, scope: Scope, parent: context.Context, new_trace_id: int
    ) -> tuple[Span, Token[context.Context]]:
        self.ids.next_trace_id = new_trace_id  # 0: the parent's trace
        method = scope["method"]
        attributes = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        span = tracer.start_span(method, parent, SpanKind.SERVER, attributes)
        # For the 500 handler, which runs once the span is no longer current.
        scope.setdefault("state", {})["span"] = span
        return span, context.attach(trace.set_span_in_context(span, parent))


def end_span(
    span: Span, token: Token[context.Context], method: str, route: str | None, status: int
) -> None:
    """Ends the span and detaches it: the request's context is as it was before."""
    context.detach(token)
    attributes: dict[str, str | int] = {"http.response.status_code": status}
    if route is not None:
        span.update_name(f"{method} {route}")
        attributes["http.route"] = route
    span.set_attributes(attributes)  # one lock taken, not one per attribute
    if status >= 500:
        span.set_status(StatusCode.ERROR)
    span.end()


class TracedTransport(httpx2.AsyncBaseTransport):
    """Outbound requests in a sampled request get a client span and a W3C traceparent."""

    def __init__(
        self,
        transport: httpx2.AsyncBaseTransport,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.transport = transport
        # The global provider's unless given one, like OpenTelemetry's own instrumentations.
        self.tracer = trace.get_tracer(__name__, __version__, tracer_provider)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if not trace.get_current_span().is_recording():
            return await self.transport.handle_async_request(request)
        url = request.url
        attributes: dict[str, str | int] = {
            "http.request.method": request.method,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
            "url.full": f"{url.scheme}://{url.netloc.decode()}{url.path}",  # no query: secrets
        }
        with self.tracer.start_as_current_span(request.method, kind=SpanKind.CLIENT) as span:
            span.set_attributes(attributes)
            W3C.inject(request.headers)
            response = await self.transport.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(StatusCode.ERROR)
            return response

    async def aclose(self) -> None:
        await self.transport.aclose()
