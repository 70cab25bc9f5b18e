"""What the metrics, tracing and access-log tests share: probe routes (an item, a failure, an
outbound call) on the app they build, and the request counter they read."""

import logging
from typing import Any

import httpx2
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.observability.tracing import TracedTransport
from {{ cookiecutter.package_name }}.settings import Settings

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


def build(spans: InMemorySpanExporter | None = None, **settings: Any) -> FastAPI:
    # JSON lines: the tests read what the app logs as data.
    app = create_app(Settings(_env_file=None, **{"log_format": "json", **settings}))
    if spans is not None:
        app.state.tracing.extra_processors.append(SimpleSpanProcessor(spans))
    app.include_router(probe)
    return app


def served(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)
