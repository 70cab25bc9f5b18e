"""The resilience benchmark: many calls to a characters API, one by one, then concurrently,
against a local upstream with a fixed latency, through the baked service's own upstream client,
and that client's cost per call against a raw httpx2 client.

Bakes the default service and installs it (like bench.py), then runs itself again with the
baked project's Python (`--measure`), which imports the baked `resilience` package. The
upstream is a small asyncio HTTP/1.1 server (stdlib, keep-alive) in its own process, answering
after `--latency` seconds; a second one answers at once, to show the client's CPU per call.
Measures, for N calls (default 500):
  sequential    each call awaited before the next (the seed: 140 s)
  concurrent    all N gathered at once, through the bulkhead (the seed: 6.7 s, 21x); 3 runs
  overhead      per-call time of our client against raw httpx2.AsyncClient on the same upstream,
                calls alternated one by one so that both see the same machine; and the same for
                N concurrent calls (raw: a semaphore of the same bound)
Prints a Markdown table. Asserts nothing: the numbers are for reading.
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
TEMPLATE = HERE.parent.parent


# --- the upstream: `python resilience.py --serve PORT --latency S` --------------------------

async def serve(port: int, latency: float) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                path = head.split(b" ", 2)[1].decode()
                await asyncio.sleep(latency)
                character_id = path.rsplit("/", 1)[-1]
                body = json.dumps({"id": int(character_id), "name": f"Rick {character_id}",
                                   "status": "Alive", "species": "Human", "gender": "Male",
                                   "image": "https://example.com/1.jpeg"}).encode()  # fmt: skip
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


# --- the measurement, inside the baked project's environment --------------------------------

async def timed(calls: list[Any]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*calls)
    return time.perf_counter() - started


async def measure(url: str, fast_url: str, calls: int, bounds: list[int]) -> dict[str, Any]:
    from dataclasses import replace

    from my_service.resilience import Upstream, UpstreamPolicy, create_http_client
    from my_service.settings import Settings

    base = UpstreamPolicy.from_settings(Settings(_env_file=None), "characters", url)
    # Queued calls must not be turned away: this measures speed, not the bulkhead's refusals.
    base = replace(base, max_wait=60.0, deadline=120.0)
    path = "/character/{}"
    report: dict[str, Any] = {"calls": calls, "concurrency": {}}

    async with create_http_client(base) as client:
        ours = Upstream(base, client)
        started = time.perf_counter()
        for i in range(calls):
            await ours.get_json(path.format(i % 800 + 1))
        report["sequential_s"] = time.perf_counter() - started

    for bound in bounds:
        policy = replace(base, max_concurrency=bound)
        async with create_http_client(policy) as client:
            ours = Upstream(policy, client)
            await timed([ours.get_json(path.format(i + 1)) for i in range(bound)])  # warm pool
            runs = [await timed([ours.get_json(path.format(i % 800 + 1)) for i in range(calls)])
                    for _ in range(3)]  # fmt: skip
        took = statistics.median(runs)
        report["concurrency"][bound] = {"concurrent_s": took, "ratio": report["sequential_s"] / took}

    report["overhead"] = {}
    for name, target, n in (("latency", url, 200), ("instant", fast_url, 3000)):
        report["overhead"][name] = await per_call(base, target, path, n)
    report["overhead"]["concurrent"] = await concurrent_overhead(base, url, path, calls)
    return report


async def per_call(base: Any, url: str, path: str, n: int) -> dict[str, float]:
    """Median seconds per call, raw httpx2 and ours alternated call by call."""
    from dataclasses import replace

    from my_service.resilience import Upstream, create_http_client

    policy = replace(base, base_url=url)
    raw_times, our_times = [], []
    async with create_http_client(policy) as raw, create_http_client(policy) as pooled:
        ours = Upstream(policy, pooled)
        for i in range(n + 20):  # the first 20 warm up
            started = time.perf_counter()
            (await raw.get(path.format(i % 800 + 1))).json()
            middle = time.perf_counter()
            await ours.get_json(path.format(i % 800 + 1))
            ended = time.perf_counter()
            if i >= 20:
                raw_times.append(middle - started)
                our_times.append(ended - middle)
    raw_s, our_s = statistics.median(raw_times), statistics.median(our_times)
    return {"raw_ms": raw_s * 1e3, "ours_ms": our_s * 1e3, "extra_us": (our_s - raw_s) * 1e6,
            "overhead_pct": (our_s / raw_s - 1) * 100}  # fmt: skip


async def concurrent_overhead(base: Any, url: str, path: str, calls: int) -> dict[str, float]:
    """N concurrent calls, raw httpx2 (a semaphore of the same bound) against ours; 3 rounds."""
    from my_service.resilience import Upstream, create_http_client

    async with create_http_client(base) as raw_client, create_http_client(base) as pooled:
        ours = Upstream(base, pooled)
        limit = asyncio.Semaphore(base.max_concurrency)

        async def raw(i: int) -> Any:
            async with limit:
                return (await raw_client.get(path.format(i % 800 + 1))).json()

        raw_runs, our_runs = [], []
        await timed([raw(i) for i in range(calls)])  # warm both pools
        await timed([ours.get_json(path.format(i % 800 + 1)) for i in range(calls)])
        for _ in range(3):
            raw_runs.append(await timed([raw(i) for i in range(calls)]))
            our_runs.append(await timed([ours.get_json(path.format(i % 800 + 1)) for i in range(calls)]))
    raw_s, our_s = statistics.median(raw_runs), statistics.median(our_runs)
    return {"raw_ms": raw_s * 1e3, "ours_ms": our_s * 1e3, "overhead_pct": (our_s / raw_s - 1) * 100}


def markdown(report: dict[str, Any], latency: float) -> str:
    n = report["calls"]
    lines = [f"{n} calls to a local upstream answering in {latency * 1e3:.0f} ms; {report['machine']}",
             "", "| run | time | × sequential |", "|---|---:|---:|",
             f"| sequential, one by one | {report['sequential_s']:.2f} s | 1.0 |"]  # fmt: skip
    for bound, row in report["concurrency"].items():
        lines.append(f"| concurrent, bulkhead of {bound} (median of 3) | {row['concurrent_s']:.2f} s | {row['ratio']:.1f} |")
    lines += ["", "| our client against raw httpx2 | raw | ours | overhead |", "|---|---:|---:|---:|"]
    o = report["overhead"]
    lines += [f"| one call, {latency * 1e3:.0f} ms upstream (median) | {o['latency']['raw_ms']:.2f} ms "
              f"| {o['latency']['ours_ms']:.2f} ms | {o['latency']['overhead_pct']:+.1f}% |",
              f"| one call, instant upstream (median) | {o['instant']['raw_ms'] * 1e3:.0f} µs "
              f"| {o['instant']['ours_ms'] * 1e3:.0f} µs | {o['instant']['overhead_pct']:+.1f}% "
              f"({o['instant']['extra_us']:+.0f} µs) |",
              f"| {n} concurrent calls (median of 3) | {o['concurrent']['raw_ms']:.0f} ms "
              f"| {o['concurrent']['ours_ms']:.0f} ms | {o['concurrent']['overhead_pct']:+.1f}% |"]  # fmt: skip
    return "\n".join(lines)


def run(main: Any) -> Any:
    """On uvloop, as uvicorn serves the service (and a client inside it) when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


# --- the driver, in the template's environment ----------------------------------------------

def bake(build: Path) -> Path:
    from cookiecutter.main import cookiecutter

    build.mkdir(parents=True, exist_ok=True)
    # database=none: the in-memory repository, so that the bare comparator does the same work.
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(build), overwrite_if_exists=True,
                                extra_context={"database": "none"}))
    subprocess.run(["uv", "sync", "--no-dev"], cwd=project, check=True, capture_output=True)
    return project


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--bounds", default="32,100", help="bulkhead sizes to try (32: default)")
    parser.add_argument("--build", type=Path, default=TEMPLATE / "build" / "bench-resilience")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, metavar=("URL", "FAST_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return run(serve(args.serve, args.latency))
    bounds = [int(b) for b in args.bounds.split(",")]
    if args.measure:
        report = run(measure(*args.measure, args.calls, bounds))
        report["machine"] = f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
        print(markdown(report, args.latency))
        return None

    project = bake(args.build)
    python = str(project / ".venv" / "bin" / "python")
    ports = free_port(), free_port()
    servers = [subprocess.Popen([python, str(HERE), "--serve", str(port), "--latency", str(latency)])
               for port, latency in zip(ports, (args.latency, 0.0))]  # fmt: skip
    try:
        time.sleep(1.0)  # the upstreams start listening
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        subprocess.run([python, str(HERE), "--measure", *urls, "--calls", str(args.calls),
                        "--latency", str(args.latency), "--bounds", args.bounds], check=True)  # fmt: skip
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
