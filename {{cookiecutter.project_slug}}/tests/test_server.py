"""The real thing: `python -m {{ cookiecutter.package_name }}` serving HTTP on 127.0.0.1."""

import signal

import httpx2

from .conftest import Server, start_server


def test_the_server_answers_live_without_a_server_banner(server: Server) -> None:
    response = httpx2.get(f"{server.url}/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "server" not in response.headers
    assert response.headers["x-request-id"]


def test_the_server_serves_its_openapi_document(server: Server) -> None:
    schema = httpx2.get(f"{server.url}/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/health/ready" in schema["paths"]


def test_the_server_answers_errors_as_problems(server: Server) -> None:
    response = httpx2.get(f"{server.url}/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_every_log_line_is_json_and_access_lines_carry_the_request_id(server: Server) -> None:
    httpx2.get(f"{server.url}/openapi.json", headers={"X-Request-ID": "server-log-1"})
    entries = server.entries(until=lambda e: e.get("request_id") == "server-log-1")
    assert any(e["logger"] == "uvicorn.error" for e in entries)
    access = [e for e in entries if e.get("request_id") == "server-log-1"]
    assert access and access[0]["logger"] == "access"  # flushed within a second
    assert access[0]["status"] == 200
    assert access[0]["route"] == "/openapi.json"
    assert not any(e["logger"] == "uvicorn.access" for e in entries)


def test_the_server_stops_gracefully_on_sigterm() -> None:
    server = start_server()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=20)
    entries = server.entries(until=lambda e: e["message"] == "Application shutdown complete.")
    messages = [entry["message"] for entry in entries]
    assert "stopped" in messages
    assert "Application shutdown complete." in messages
