"""The security edge: headers on every response, Host check, body limit, gzip, the API docs."""

import base64
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastapi import FastAPI, Response
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.security.edge import HostRule
from {{ cookiecutter.package_name }}.settings import Settings, problems

from .conftest import production_settings

# The OWASP Secure Headers Project's recommended values (ci/headers_add.json), but a stricter
# CSP (an API loads nothing) and no Clear-Site-Data (it would wipe the caller's storage).
OWASP_PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), cross-origin-isolated=(), display-capture=(), "
    "encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), keyboard-map=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), "
    "publickey-credentials-get=(), screen-wake-lock=(), sync-xhr=(self), usb=(), web-share=(), "
    "xr-spatial-tracking=(), clipboard-read=(), clipboard-write=(), gamepad=(), hid=(), "
    "idle-detection=(), interest-cohort=(), serial=(), unload=()"
)
API_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": OWASP_PERMISSIONS_POLICY,
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "x-permitted-cross-domain-policies": "none",
    "cache-control": "no-store, max-age=0",
}
JSON = {"content-type": "application/json"}
DOCS_USER = "docs-reader"
DOCS_PASSWORD = "a-long-docs-password"


class Echo(BaseModel):
    text: str


def with_test_routes(app: FastAPI) -> FastAPI:
    """Routes only these tests need: one that fails, one with a body, a large answer."""

    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.post("/test/echo")
    async def echo(body: Echo) -> Echo:
        return body

    @app.get("/test/large")
    async def large() -> dict[str, str]:
        return {"text": "x" * 5000}

    @app.get("/test/huge")
    async def huge() -> dict[str, str]:
        return {"text": "x" * 200_000}  # compressed off the event loop

    @app.get("/test/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"x" * 3000, b"y" * 3000]), media_type="text/event-stream")

    @app.get("/test/encoded")
    async def encoded() -> Response:
        return Response(b"x" * 3000, headers={"content-encoding": "identity"})

    @app.get("/test/partial")
    async def partial() -> Response:
        return Response(b"x" * 3000, status_code=206)

    @app.websocket("/test/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    return app


def client_for(**settings: Any) -> TestClient:
    if settings.get("environment", "development") != "development":
        settings = production_settings(**settings)
    app = with_test_routes(create_app(Settings(_env_file=None, **settings)))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with client_for(max_body_bytes=100) as client:
        yield client


def assert_api_headers(headers: Mapping[str, str]) -> None:
    assert {name: headers.get(name) for name in API_HEADERS} == API_HEADERS
    assert "clear-site-data" not in headers
    assert "strict-transport-security" not in headers
    assert "server" not in headers


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/health/live", None, 200),
        ("GET", "/no/such/route", None, 404),
        ("POST", "/test/echo", {"text": 1}, 422),
        ("POST", "/test/echo", {"text": "x" * 200}, 413),
        ("GET", "/test/boom", None, 500),
    ],
)
def test_every_response_carries_the_security_headers(
    client: TestClient, method: str, path: str, body: object, status: int
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == status
    assert_api_headers(response.headers)


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    response = client.post("/test/echo", json={"text": "x" * 200})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The request body is larger than 100 bytes."
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_a_chunked_body_is_counted_while_it_streams(client: TestClient) -> None:
    chunks = iter([b'{"text": "', b"x" * 60, b"x" * 60, b'"}'])
    response = client.post("/test/echo", content=chunks, headers=JSON)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert_api_headers(response.headers)
    small = client.post("/test/echo", content=iter([b'{"text": ', b'"ok"}']), headers=JSON)
    assert small.status_code == 200


def test_an_unknown_host_is_refused_with_a_problem(client: TestClient) -> None:
    response = client.get("/test/large", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("The Host header names a host")
    assert_api_headers(response.headers)
    assert client.get("/health/live", headers={"host": "10.1.2.3:8000"}).status_code == 200


def test_probes_and_prometheus_may_name_the_pod_by_its_address(client: TestClient) -> None:
    pod = {"host": "10.1.2.3:8000"}
    assert client.get("/health/live", headers=pod).status_code == 200
    assert client.get("/metrics", headers=pod).status_code == 200
    assert client.get("/metricsx", headers=pod).status_code == 400


def test_an_unknown_host_cannot_open_a_websocket(client: TestClient) -> None:
    with client.websocket_connect("/test/ws") as websocket:
        assert websocket.receive_text() == "hello"
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/test/ws", headers={"host": "evil.example"}):
            pass  # pragma: no cover
    assert refused.value.code == 1008


def test_host_rules_match_names_ports_and_subdomains() -> None:
    rule = HostRule(["api.example.com", "*.internal.example", "::1"])
    assert rule.allows(b"API.example.com:443")
    assert rule.allows(b"svc.internal.example")
    assert rule.allows(b"[::1]:8000")
    assert not rule.allows(b"internal.example")
    assert not rule.allows(b"api.example.com.evil.example")
    assert not HostRule(["api.example.com"]).allows(b"x.example.com")


def test_any_host_is_accepted_with_a_star() -> None:
    with client_for(allowed_hosts=["*"]) as client:
        assert client.get("/health/live", headers={"host": "anything.example"}).status_code == 200


def test_large_responses_are_gzipped_small_ones_not(client: TestClient) -> None:
    large = client.get("/test/large", headers={"accept-encoding": "gzip"})
    assert large.headers["content-encoding"] == "gzip"
    assert large.json()["text"] == "x" * 5000
    assert large.headers["vary"] == "Accept-Encoding"
    assert int(large.headers["content-length"]) < 1000
    small = client.get("/health/live", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in small.headers
    plain = client.get("/test/large", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"  # a client with gzip gets another body


def test_answers_that_gzip_would_not_change_do_not_vary_on_encoding(client: TestClient) -> None:
    identity = {"accept-encoding": "identity"}
    # Small, of an excluded type, encoded already, partial.
    for path in ("/health/live", "/test/stream", "/test/encoded", "/test/partial"):
        assert "vary" not in client.get(path, headers=identity).headers, path


def test_huge_bodies_are_gzipped_event_streams_and_encoded_bodies_left_alone(
    client: TestClient,
) -> None:
    gzip = {"accept-encoding": "gzip"}
    huge = client.get("/test/huge", headers=gzip)
    assert huge.headers["content-encoding"] == "gzip"
    assert len(huge.json()["text"]) == 200_000
    streamed = client.get("/test/stream", headers=gzip)
    assert "content-encoding" not in streamed.headers
    assert streamed.text == "x" * 3000 + "y" * 3000
    encoded = client.get("/test/encoded", headers=gzip)
    assert encoded.headers["content-encoding"] == "identity"


def test_gzip_can_be_left_to_a_proxy() -> None:
    """GZIP_ENABLED=false: nothing is compressed (the proxy in front does it)."""
    with client_for(gzip_enabled=False) as client:
        large = client.get("/test/large", headers={"accept-encoding": "gzip"})
    assert large.status_code == 200
    assert "content-encoding" not in large.headers
    assert "vary" not in large.headers
    assert large.json()["text"] == "x" * 5000


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_every_environment_but_development_adds_strict_transport_security(
    environment: str,
) -> None:
    with client_for(environment=environment) as client:
        headers = client.get("/health/live").headers
    assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    with client_for(environment=environment, hsts_max_age_seconds=0) as client:
        assert "strict-transport-security" not in client.get("/health/live").headers


def test_docs_are_served_with_their_own_policy_and_local_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert '<script src="docs/assets/swagger-ui-bundle.js">' in page.text
    assert "<script>" not in page.text and "http" not in page.text  # no inline script, no CDN
    redoc = client.get("/redoc")
    assert '<redoc spec-url="openapi.json">' in redoc.text
    assert "/health/live" in client.get("/openapi.json").json()["paths"]
    for name, kind in [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "text/javascript"),
        ("swagger-init.js", "text/javascript"),
    ]:
        asset = client.get(f"/docs/assets/{name}")
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith(kind)
        assert asset.headers["cache-control"] == "private, max-age=86400"
    assert client.get("/redoc/logo-mini.svg").status_code == 200
    assert client.get("/docs/assets/unknown.js").status_code == 404


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_docs_are_absent_outside_development_by_default(environment: str) -> None:
    with client_for(environment=environment) as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css"):
            response = client.get(path)
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def test_docs_in_production_ask_for_basic_auth() -> None:
    with client_for(
        environment="production",
        docs_in_production=True,
        docs_username=DOCS_USER,
        docs_password=DOCS_PASSWORD,
    ) as client:
        anonymous = client.get("/docs")
        wrong = client.get("/openapi.json", headers=basic(DOCS_USER, "wrong-password-xx"))
        right = client.get("/openapi.json", headers=basic(DOCS_USER, DOCS_PASSWORD))
        page = client.get("/redoc", headers=basic(DOCS_USER, DOCS_PASSWORD))
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="docs"')
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic")
    assert right.status_code == 200
    assert "/health/live" in right.json()["paths"]
    assert page.status_code == 200


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        ({"allowed_hosts": "*"}, {"allowed_hosts"}),
        ({"docs_in_production": True}, {"docs_username", "docs_password"}),
        (
            {"docs_in_production": True, "docs_username": "u", "docs_password": "short"},
            {"docs_password"},
        ),
        (
            {"docs_in_production": True, "docs_username": "u" * 16, "docs_password": "u" * 16},
            {"docs_password"},
        ),
    ],
)
def test_production_refuses_unsafe_edge_settings(
    settings: dict[str, Any], refused: set[str]
) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(_env_file=None, **production_settings(**settings))
    assert {name for name, _ in problems(error.value)} == refused
