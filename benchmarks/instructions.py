"""Instructions per request, layer by layer: a measure that a busy machine cannot disturb.

Runs inside valgrind's callgrind (`make bench-instructions`; needs valgrind and gcc): the baked
service's ASGI app and the bare app are called directly (no server, no network), and callgrind
counts the CPU instructions of N requests to GET /api/v1/articles/1 for each variant, switched on
and off by callgrind_toggle.c around the measured calls and the export of the spans they made.
Each variant runs in its own process, from the same start (one measured after another in the
same process counted up to 20% differently: what the allocator and collector had been through),
under three hash seeds, averaged (the seed alone moves a count by up to 3%). The counts then
repeat from run to run: exactly without tracing, within about 1% with spans exported (the
exporter's thread keeps its own time), 5% when every request is traced. So a layer's cost shows
even on a noisy machine, where `make bench` (time, through a real server) needs many rounds.
What it cannot show: the server's own work (uvicorn, the sockets), cache misses. Read both.

Variants: bare; service (production, every feature on, as in `make bench`); and the service
without one layer at a time: each is a middleware of main.py's stack left out, or a setting; and
the service with and without gzip for a client that sends `Accept-Encoding: gzip`.
"""

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import random
import re
import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor
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


# name: (settings over PRODUCTION, the middleware of main.py's stack left out, environment)
VARIANTS: dict[str, tuple[dict[str, Any], tuple[str, ...], dict[str, str]]] = {
    "bare": ({}, (), {}),
    "service": ({}, (), {}),
    "every request traced": ({"trace_sample_ratio": 1.0}, (), {}),
    "no request sampled (TRACE_SAMPLE_RATIO=0)": ({"trace_sample_ratio": 0.0}, (), {}),
    "without tracing": ({}, (), {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}),
    "without the access log": ({"access_log": False}, (), {}),
    "without rate limiting": ({"rate_limit_enabled": False}, (), {}),
    "without CORS": ({"cors_origins": []}, (), {}),
    "without gzip (GZIP_ENABLED=false, behind nginx)": ({"gzip_enabled": False}, (), {}),
    "without security (edge, CORS, gzip)": ({}, ("EdgeMiddleware", "OriginCorsMiddleware", "AcceptedGZipMiddleware"), {}),
    "without request ids": ({}, ("RequestIdMiddleware",), {}),
    "without observability (metrics, tracing, log)": ({}, ("ObservabilityMiddleware",), {}),
    "service, the client accepts gzip": ({}, (), {}),
    "without gzip, the client accepts gzip": ({"gzip_enabled": False}, (), {}),
}
# Browsers and httpx send Accept-Encoding: gzip (wrk, the other variants' client, does not).
ACCEPTS_GZIP = [(b"accept-encoding", b"gzip, deflate")]
EXTRA_HEADERS = {name: ACCEPTS_GZIP for name in VARIANTS if "accepts gzip" in name}
HASH_SEEDS = ("0", "1", "2")
PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "metrics_token": "a-metrics-token-for-the-benchmark-0123456789",
    "cors_origins": ["https://app.example.com"],
    "rate_limit_default": "100000000/minute",
}


def chosen(names: list[str]) -> list[str]:
    """The variants to run, in VARIANTS' order: those named, and bare and service, which every
    ratio needs."""
    return [name for name in VARIANTS if name in {"bare", "service", *names}]


def build(name: str) -> Any:
    if name == "bare":
        from bare_app import app

        return app
    from my_service.main import create_app
    from my_service.settings import Settings

    settings, left_out, _ = VARIANTS[name]
    app = create_app(Settings(_env_file=None, **{**PRODUCTION, **settings}))
    # The stack is built on the first call: take the layer out of main.py's list before it.
    app.user_middleware = [m for m in app.user_middleware if m.cls.__name__ not in left_out]
    return app


async def measure(name: str, requests: int) -> None:
    """Inside callgrind, one variant per process (so each starts from the same state): its
    requests, counted between start() and stop(name)."""
    toggle = ctypes.CDLL(os.environ["CALLGRIND_TOGGLE"])
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, VARIANTS[name][2]))
        app = build(name)
        state = await stack.enter_async_context(app.router.lifespan_context(app)) or {}
        if name != "bare":  # the service starts empty; the bare app has its article
            post = {**SCOPE, "method": "POST", "path": "/api/v1/articles", "state": dict(state),
                    "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]}  # fmt: skip
            await call(app, post, b'{"name": "Article 1", "price": 10.0}')
        scope = {**SCOPE, "headers": [*SCOPE["headers"], *EXTRA_HEADERS.get(name, [])]}
        for _ in range(200):  # warm-up: caches filled, lazy imports done
            assert await call(app, {**scope, "state": dict(state)}) == 200
        # The spans' export (their encoding, on the exporter's thread) is counted too.
        provider = getattr(getattr(app.state, "tracing", None), "provider", None)
        flush = provider.force_flush if provider is not None else lambda: True
        flush()
        random.seed(0)  # the same requests sampled (trace ids drawn) in every run
        toggle.start()
        for _ in range(requests):
            await call(app, {**scope, "state": dict(state)})
        flush()
        toggle.stop(name.encode())


def count(build: Path, requests: int) -> dict[str, float]:
    """Instructions per request by variant, from callgrind's dumps (made by each stop()): the
    mean over the runs of a variant (one per hash seed)."""
    totals: dict[str, list[int]] = {}
    for dump in sorted(build.glob("callgrind.*.out.*"), key=lambda path: int(path.name.split(".")[1])):
        text = dump.read_text(errors="replace")
        name = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if name and total:
            totals.setdefault(name[1], []).append(int(total[1]))
    return {name: statistics.mean(runs) / requests for name, runs in totals.items()}


def run(project: Path, requests: int, build: Path, variants: list[str]) -> dict[str, float]:
    import bench  # the driver's side only (it needs the template's environment)

    build.mkdir(parents=True, exist_ok=True)
    toggle = build / "callgrind_toggle.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(toggle), str(HERE / "callgrind_toggle.c")],
                   check=True)  # fmt: skip
    for stale in build.glob("callgrind.*"):
        stale.unlink()
    env = {**os.environ, "CALLGRIND_TOGGLE": str(toggle), "PYTHONPATH": str(HERE),
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{bench.SINK_PORT}"}  # fmt: skip
    # A variant's count moves by up to 3% with the hash seed (dict and set layouts): each
    # variant runs under the same few seeds, and the mean is kept.
    runs = [(name, seed) for name in variants for seed in HASH_SEEDS]

    def inside(number: int, run: tuple[str, str]) -> None:
        name, seed = run
        command = ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--instr-atstart=no",
                   f"--callgrind-out-file={build}/callgrind.{number}.out", str(project / ".venv/bin/python"),
                   __file__, "--inside", str(requests), "--variant", name]  # fmt: skip
        subprocess.run(command, cwd=project, env={**env, "PYTHONHASHSEED": seed}, check=True, capture_output=True)

    sink = subprocess.Popen([str(project / ".venv/bin/python"), str(HERE / "otlp_sink.py"), str(bench.SINK_PORT)])
    try:  # a count does not depend on the machine's load: as many at once as there are CPUs
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(inside, range(len(runs)), runs))
    finally:
        sink.terminate()
    return count(build, requests)


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
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), metavar="NAME",
                        help="only these variants (bare and service always run: the ratios need them); "
                        f"of: {', '.join(map(repr, VARIANTS))}")  # fmt: skip
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, default=TEMPLATE / "build" / "bench")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "instructions.json")
    args = parser.parse_args()
    if args.inside:
        asyncio.run(measure(args.variant, args.inside))
        return
    import bench

    project = bench.bake(args.build)
    per_request = run(project, args.requests, args.build / "callgrind", chosen(args.variants))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"requests": args.requests, "instructions_per_request": per_request}, indent=2) + "\n")
    print(report(per_request, args.requests))


if __name__ == "__main__":
    main()
