"""Metrics that stay right against the real server, whatever the clients send and however the
workers start: methods folded into one label value, a replaced worker's gauge gone, workers
started by `uvicorn --workers` counted together or refused."""

import os
import signal
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from .combinations import API_KEY_BAKE, JWT_BAKE, LAMBDA_BAKE
from .conftest import Baked, once_in
from .served import Command, free_port, running
from .test_observability import requests_total, wait_for

serving = contextmanager(running)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
STANDARD_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Methods uvicorn's HTTP parser knows beyond the standard ones: they reach the app. A method it
# does not know at all (the invented ones) is refused with 400 before the app sees it.
RARE_METHODS = ["PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "TRACE",
                "PURGE", "SEARCH", "REPORT", "MKCALENDAR", "LINK", "UNLINK", "NOTIFY"]  # fmt: skip
INVENTED_METHODS = [f"INVENTED{number}" for number in range(100)]


def raw_status(url: str, method: str, path: str) -> int:
    """The status of one request sent as raw bytes: no client library checks the method."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        request = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        connection.sendall(request.encode())
        status_line = connection.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def method_labels(metrics_text: str) -> list[tuple[str, float]]:
    """(method label, count) of each http_requests_total series."""
    return [
        (line.split('method="', 1)[1].split('"', 1)[0], float(line.rsplit(" ", 1)[1]))
        for line in metrics_text.splitlines()
        if line.startswith("http_requests_total{")
    ]


def test_rare_and_invented_methods_are_one_series(
    installed: Baked, request: pytest.FixtureRequest
) -> None:
    once_in(request, API_KEY_BAKE, "the metrics' labels are the same whatever the options")
    with serving(installed.path, installed.package) as service:
        statuses = [
            raw_status(service.url, method, "/no/such/page")
            for method in RARE_METHODS + INVENTED_METHODS
        ]
        text = httpx.get(f"{service.url}/metrics").text
    reached_the_app = statuses.count(404)
    assert set(statuses) <= {400, 404} and reached_the_app >= len(RARE_METHODS)
    labels = method_labels(text)
    assert {method for method, _ in labels} <= STANDARD_METHODS | {"other"}
    [other] = [count for method, count in labels if method == "other"]  # one series
    assert other == reached_the_app


def uvicorn_workers(installed: Baked, workers: int = 2, healthcheck: int = 120) -> Command:
    """The service started by uvicorn's own command line and process manager, not ours."""

    def command(port: int) -> list[str]:
        return [
            str(installed.path / ".venv" / "bin" / "uvicorn"),
            f"{installed.package}.main:app",
            f"--port={port}",
            f"--workers={workers}",
            f"--timeout-worker-healthcheck={healthcheck}",  # a new worker imports the app: slow
        ]

    return command


def test_a_worker_replaced_gracefully_leaves_the_breaker_gauge(
    installed: Baked, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An open breaker counts while its worker lives; uvicorn's SIGHUP replaces every worker
    (each old one stops through the lifespan), and the gauge no longer shows it."""
    # In a bake with the examples (the upstream a breaker opens on); no other option changes it.
    once_in(request, JWT_BAKE, "the breaker and the workers' metrics are the same everywhere")
    prefix = installed.package.upper()
    settings = {
        MULTIPROC_DIR: str(tmp_path),
        f"{prefix}_CHARACTERS_API_URL": f"http://127.0.0.1:{free_port()}",  # nobody listens
        f"{prefix}_UPSTREAM_ATTEMPTS": "1",
        f"{prefix}_UPSTREAM_BREAKER_THRESHOLD": "1",
        f"{prefix}_UPSTREAM_BREAKER_RECOVERY_SECONDS": "3600",
    }
    gauge = 'upstream_circuit_breaker_state{upstream="characters"} 2.0'
    command = uvicorn_workers(installed)
    with serving(installed.path, installed.package, settings, 120, command) as service:
        assert httpx.get(f"{service.url}/api/v1/characters/1").status_code == 503
        assert gauge in httpx.get(f"{service.url}/metrics").text
        service.process.send_signal(signal.SIGHUP)

        def replaced() -> bool:  # each old worker logs this after its lifespan has stopped
            return "".join(service.output).count("Finished server process") >= 2

        wait_for(replaced, timeout=300)
        response = httpx.get(f"{service.url}/metrics")
    assert response.status_code == 200 and "http_requests_total" in response.text
    assert gauge not in response.text


def production(installed: Baked) -> dict[str, str]:
    return {f"{installed.package.upper()}_ENVIRONMENT": "production",
            **installed.production_secrets()}  # fmt: skip


def test_uvicorn_workers_without_a_metrics_directory_refuse_to_start(
    installed: Baked, request: pytest.FixtureRequest
) -> None:
    once_in(request, JWT_BAKE, "the metrics' set-up is the same whatever the options")
    env = {**os.environ, **production(installed)}
    env.pop(MULTIPROC_DIR, None)
    # A worker pinged while it exits answers nothing until the health check times out: short.
    command = uvicorn_workers(installed, healthcheck=15)(free_port())
    # uvicorn's process manager stops once a worker fails to start (its own exit status is 0).
    # A session of its own: should it serve instead, the test stops its workers too.
    process = subprocess.Popen(
        command,
        cwd=installed.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    refusals = [line for line in output.splitlines() if "without PROMETHEUS_MULTIPROC_DIR" in line]
    assert refusals, output
    assert "failed to start, stopping the parent process" in output


def test_uvicorn_workers_with_a_metrics_directory_count_every_request(
    installed: Baked, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    once_in(request, LAMBDA_BAKE, "the metrics' set-up is the same whatever the options")
    settings = {**production(installed), MULTIPROC_DIR: str(tmp_path)}
    headers = {"Authorization": f"Bearer {settings[f'{installed.package.upper()}_METRICS_TOKEN']}"}
    command = uvicorn_workers(installed)
    with serving(installed.path, installed.package, settings, 120, command) as service:

        def scraped() -> Any:
            return requests_total(httpx.get(f"{service.url}/metrics", headers=headers).text)

        before = scraped()
        for number in range(60):
            httpx.get(f"{service.url}/no/such/{number}")  # a new connection each: both workers
        for _ in range(4):  # whichever worker answers adds up both workers' files
            assert scraped() == before + 60
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
