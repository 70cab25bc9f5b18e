"""Instructions per request, layer by layer: a measure that a busy machine cannot disturb.

Runs inside valgrind's callgrind (`make bench-instructions`; needs valgrind and gcc): the baked
service's ASGI app and the bare app are called directly (no server, no network), and callgrind
counts the CPU instructions of N requests to GET /api/v1/articles/1 for each variant, switched on
and off by callgrind_toggle.c around the measured calls and the export of the spans they made.
The counts repeat to within a fraction of a percent from run to run, so a layer's cost shows
even on a noisy machine, where `make bench` (time, through a real server) needs many rounds. What it cannot show: the server's own work
(uvicorn, the sockets), cache misses, other threads' timing. Read both.

Variants: bare; service (production, every feature on, as in `make bench`); and the service
without one layer at a time: each is one install_* call of main.py left out, or a setting.
"""

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
ROUTE = "/api/v1/articles/1"
SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": ROUTE, "raw_path": ROUTE.encode(), "query_string": b"",
    "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk")],
    "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
}  # fmt: skip


async def call(app: Any, scope: dict[str, Any], body: bytes = b"") -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


@contextlib.contextmanager
def without(name: str) -> Iterator[None]:
    """main.create_app with one of its install_* calls left out."""
    with mock.patch(f"my_service.main.{name}", lambda *args: None):
        yield


def variants() -> dict[str, Callable[[], Any]]:
    from bare_app import app as bare
    from my_service.main import create_app
    from my_service.settings import Settings

    def service(**settings: Any) -> Any:
        return create_app(Settings(_env_file=None, **{**PRODUCTION, **settings}))

    def service_without(name: str) -> Any:
        with without(name):
            return service()

    return {
        "bare": lambda: bare,
        "service": service,
        "every request traced": lambda: service(trace_sample_ratio=1.0),
        "without tracing": service,  # built and started with no OTLP endpoint: NO_EXPORT
        "without the access log": lambda: service(access_log=False),
        "without rate limiting": lambda: service(rate_limit_enabled=False),
        "without CORS": lambda: service(cors_origins=[]),
        "without security (edge, CORS, gzip)": lambda: service_without("install_security"),
        "without request ids": lambda: service_without("install_request_id"),
        "without observability (metrics, tracing, log)": lambda: service_without("install_observability"),
    }  # fmt: skip


PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "cors_origins": ["https://app.example.com"],
    "rate_limit_default": "100000000/minute",
}


NO_EXPORT = {"without tracing": {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}}


async def measure(requests: int) -> None:
    """Inside callgrind: each variant's requests, counted between start() and stop(name)."""
    toggle = ctypes.CDLL(os.environ["CALLGRIND_TOGGLE"])
    for name, build in variants().items():
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(mock.patch.dict(os.environ, NO_EXPORT.get(name, {})))
            app = build()
            state: dict[str, Any] = {}
            if name != "bare":
                state = await stack.enter_async_context(app.router.lifespan_context(app)) or {}
                post = {**SCOPE, "method": "POST", "path": "/api/v1/articles", "state": dict(state),
                        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]}  # fmt: skip
                await call(app, post, b'{"name": "Article 1", "price": 10.0}')
            for _ in range(200):  # warm-up: caches filled, lazy imports done
                assert await call(app, {**SCOPE, "state": dict(state)}) == 200
            # The spans' export (their encoding, on the exporter's thread) is counted too.
            provider = getattr(getattr(app.state, "tracing", None), "provider", None)
            flush = provider.force_flush if provider is not None else lambda: True
            flush()
            toggle.start()
            for _ in range(requests):
                await call(app, {**SCOPE, "state": dict(state)})
            flush()
            toggle.stop(name.encode())


def count(out: Path, requests: int) -> dict[str, float]:
    """Instructions per request by variant, from callgrind's dumps (one per stop())."""
    per_request = {}
    dumps = out.parent.glob(out.name + ".*")
    for dump in sorted(dumps, key=lambda path: int(path.suffix[1:])):
        text = dump.read_text(errors="replace")
        name = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if name and total:
            per_request[name[1]] = int(total[1]) / requests
    return per_request


def run(project: Path, requests: int, build: Path) -> dict[str, float]:
    import bench  # the driver's side only (it needs the template's environment)

    build.mkdir(parents=True, exist_ok=True)
    toggle = build / "callgrind_toggle.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(toggle), str(HERE / "callgrind_toggle.c")],
                   check=True)  # fmt: skip
    out = build / "callgrind.out"
    for stale in build.glob("callgrind.out*"):
        stale.unlink()
    env = {**os.environ, "CALLGRIND_TOGGLE": str(toggle), "PYTHONPATH": str(HERE),
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{bench.SINK_PORT}"}  # fmt: skip
    command = ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--instr-atstart=no",
               f"--callgrind-out-file={out}", str(project / ".venv/bin/python"), __file__,
               "--inside", str(requests)]  # fmt: skip
    sink = subprocess.Popen([str(project / ".venv/bin/python"), str(HERE / "otlp_sink.py"), str(bench.SINK_PORT)])
    try:
        subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
    finally:
        sink.terminate()
    return count(out, requests)


def report(per_request: dict[str, float], requests: int) -> str:
    bare, service = per_request["bare"], per_request["service"]
    lines = [f"Instructions per request (callgrind, {requests} requests each, in-process ASGI calls)", "",
             "| variant | instructions | × bare | vs service |", "|---|---:|---:|---:|"]  # fmt: skip
    for name, value in per_request.items():
        delta = "" if name in ("bare", "service") else f"{value - service:+,.0f}"
        lines.append(f"| {name} | {value:,.0f} | {value / bare:.2f} | {delta} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, default=TEMPLATE / "build" / "bench")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "instructions.json")
    args = parser.parse_args()
    if args.inside:
        asyncio.run(measure(args.inside))
        return
    import bench

    project = bench.bake(args.build)
    per_request = run(project, args.requests, args.build / "callgrind")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"requests": args.requests, "instructions_per_request": per_request}, indent=2) + "\n")
    print(report(per_request, args.requests))


if __name__ == "__main__":
    main()
