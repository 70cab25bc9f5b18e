"""The performance benchmark: the baked default service against bare FastAPI, side by side.

Bakes the default service, installs it, and serves in one run, each with the same uvicorn flags
from the baked project's own environment:
  service         (a) the production configuration with every feature on: security edge and
                  headers, CORS, gzip, rate limiting (a limit too high to trigger), request ids,
                  metrics, the JSON access log, tracing at the default sampling (0.1) exporting
                  over OTLP/HTTP to a sink that accepts and drops the spans (otlp_sink.py)
  service-trace-1 (b) the same with every request traced (TRACE_SAMPLE_RATIO=1.0)
  bare            (c) bare FastAPI doing the same route work: the same dependencies, id check
                  and response model, no middleware (bare_app.py)
With --layers, also the service without one layer at a time (tracing, access log, rate limit,
metrics are on in all of them): what each layer costs; and the floor (floor_app.py): bare FastAPI
carrying the service's response headers and reading its If-None-Match, nothing computed.
With --queued-log, also the service with its log lines formatted and written by a QueueListener
thread (queued_log.py).
Throughput comes from wrk in a separate process (one thread, 64 connections: saturation), the
server pinned to CPU 0 and wrk to CPU 1; a warm-up, then interleaved rounds in shuffled order,
then medians. Latency is judged at a fixed offered load instead, open loop, below saturation:
after the throughput rounds, as many rounds of `hey -c 20 -q N` (on CPU 1), 20 workers × N req/s
offering half of bare's measured capacity to every variant, interleaved and shuffled the same way.
Also: cold start (process start to first 200) and idle RSS, interleaved too; the imports done
before the first 200, by package; and 2 workers against 1, for the service and for bare FastAPI.
With --start-only, only the cold start, idle RSS and imports of bare and the service (a).
Prints Markdown tables and writes JSON (benchmarks/results/latest.json). Asserts nothing:
the numbers are for reading, as ratios to `bare` measured in the same run.
"""

import argparse
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

import hey
import wrk

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
ROUTE = "/api/v1/articles/1"


@dataclass
class Variant:
    name: str
    app: str
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    cpu: str | None = "0"
    flags: tuple[str, ...] = ()

    @property
    def is_service(self) -> bool:
        """The baked service (`-m`), or a launcher of it (a .py file here); else a uvicorn app."""
        return self.app == "-m" or self.app.endswith(".py")


def bake(build: Path, database: str = "none") -> Path:
    from cookiecutter.main import cookiecutter

    build.mkdir(parents=True, exist_ok=True)
    # database=none: the in-memory repository, so that bare_app.py does the same work (the
    # database variant, database.py, has its own comparator).
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(build), overwrite_if_exists=True,
                                extra_context={"database": database}))
    # Installed as the Dockerfile installs it: not editable, every module compiled to bytecode
    # at install time. Otherwise each start compiles every module from source whenever
    # PYTHONDONTWRITEBYTECODE is set (as on CI machines and in the image), and the cold start
    # measures the compiler: 2.0-2.3x bare that way, against 1.3-1.4x installed as in the image.
    subprocess.run(["uv", "sync", "--no-dev", "--no-editable", "--compile-bytecode"],
                   cwd=project, check=True, capture_output=True)  # fmt: skip
    return project


def start(project: Path, variant: Variant, port: int, stderr: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """The service starts the production way (`python -m my_service`, its settings from the
    environment); the bare app with uvicorn's command line and the same flags."""
    env = {**os.environ, **variant.env}
    if variant.is_service:
        how = ["-m", "my_service"] if variant.app == "-m" else [str(HERE / variant.app)]
        command = [str(project / ".venv/bin/python"), *how]
        env |= {"MY_SERVICE_HOST": "127.0.0.1", "MY_SERVICE_PORT": str(port),
                "MY_SERVICE_WORKERS": str(variant.workers)}  # fmt: skip
    else:
        command = [str(project / ".venv/bin/python"), "-m", "uvicorn", variant.app,
                   "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(variant.workers), "--no-server-header", *variant.flags]  # fmt: skip
    if variant.cpu is not None:
        command = ["taskset", "-c", variant.cpu, *command]
    return subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL,
                            stderr=stderr, start_new_session=True)  # fmt: skip


def wait_live(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.005)
    raise RuntimeError(f"{url} did not come up")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def group_rss_mib(pgid: int) -> float:
    """The resident memory of every process in a process group: the server's, and its helpers'
    (a process pool, multiprocessing's resource tracker), which its memory bill includes."""
    kib = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
            if os.getpgid(int(status.parent.name)) != pgid:
                continue
        except (OSError, ProcessLookupError):
            continue  # the process ended meanwhile
        kib += sum(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))
    return kib / 1024


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by every process in a process group."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[2]) == pgid:  # pgrp; fields[11:13] are utime and stime
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(url: str, seconds: int, cpu: str | None, pgid: int) -> dict[str, float]:
    """One wrk run, plus the server's CPU microseconds per request: steadier than req/s on a
    shared machine, because time the server spends waiting for a CPU is not counted."""
    before = group_cpu_seconds(pgid)
    result = wrk.run(url, seconds, cpu=cpu)
    used = group_cpu_seconds(pgid) - before
    return {**result, "cpu_us_per_request": used / max(result["requests"], 1) * 1e6}


def cold_start(project: Path, variants: list[Variant], port: int, runs: int) -> dict[str, tuple[float, float]]:
    """Per variant: median seconds from process start to first 200, and the median idle RSS
    (MiB) a second later. Interleaved like the load rounds, so a busy spell hits every variant."""
    starts: dict[str, list[float]] = {v.name: [] for v in variants}
    rss: dict[str, list[float]] = {v.name: [] for v in variants}
    for _ in range(runs):
        for v in random.sample(variants, len(variants)):
            process = start(project, v, port)
            starts[v.name].append(wait_live(f"http://127.0.0.1:{port}", process))
            time.sleep(1)
            rss[v.name].append(group_rss_mib(process.pid))  # its own session: pgid == pid
            stop(process)
    return {name: (statistics.median(starts[name]), statistics.median(rss[name])) for name in starts}


def import_ms(project: Path, variants: list[Variant], port: int, runs: int) -> dict[str, Counter[str]]:
    """Per variant: milliseconds spent importing each top-level package between process start
    and the first 200 (python -X importtime, the modules' own times), the mean of `runs` starts."""
    totals: dict[str, Counter[str]] = {v.name: Counter() for v in variants}
    for _ in range(runs):
        for v in variants:
            with tempfile.TemporaryFile() as log:
                process = start(project, replace(v, env={**v.env, "PYTHONPROFILEIMPORTTIME": "1"}), port, log)
                wait_live(f"http://127.0.0.1:{port}", process)
                stop(process)
                log.seek(0)
                for own, module in IMPORT_LINE.findall(log.read().decode(errors="replace")):
                    totals[v.name][module.split(".")[0]] += int(own) / 1000 / runs
    return totals


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \| *([\w.]+)$", re.M)


@dataclass
class Served:
    url: str
    pgid: int


def free_port() -> int:
    """A port nothing listens on now: two benchmarks running at once never share a server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(project: Path, variants: list[Variant]) -> Iterator[dict[str, Served]]:
    """Serve every variant at once, each on its own port, warmed up; stopped on leaving."""
    ports = {v.name: free_port() for v in variants}
    processes = {v.name: start(project, v, ports[v.name]) for v in variants}
    try:
        for v in variants:
            url = f"http://127.0.0.1:{ports[v.name]}"
            wait_live(url, processes[v.name])
            if v.is_service:  # the service starts empty; the bare app has its article
                httpx.post(f"{url}/api/v1/articles", json={"name": "Article 1", "price": 10.0})
            wrk.run(url + ROUTE, 2, cpu="1")  # warm-up
        yield {name: Served(f"http://127.0.0.1:{ports[name]}{ROUTE}", p.pid) for name, p in processes.items()}
    finally:
        for process in processes.values():
            stop(process)


def interleaved(variants: list[Variant], rounds: int) -> Iterator[Variant]:
    """Every variant once per round, in a new shuffled order each round."""
    for _ in range(rounds):
        yield from random.sample(variants, len(variants))


Runs = dict[str, list[dict[str, float]]]  # per variant, one result per round


def throughput(servers: dict[str, Served], variants: list[Variant], rounds: int, seconds: int) -> Runs:
    """wrk at saturation, one variant at a time, interleaved."""
    results: Runs = {v.name: [] for v in variants}
    for v in interleaved(variants, rounds):
        cpu = "1" if v.cpu is not None else None
        results[v.name].append(measure(servers[v.name].url, seconds, cpu, servers[v.name].pgid))
    return results


def fixed_load(servers: dict[str, Served], variants: list[Variant], rounds: int, seconds: int, qps: float) -> Runs:
    """hey at the same offered rate (qps per worker), one variant at a time, interleaved."""
    results: Runs = {v.name: [] for v in variants}
    for v in interleaved(variants, rounds):
        results[v.name].append(hey.run(servers[v.name].url, seconds, qps, cpu="1"))
    return results


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def spreads(rounds: Runs, keys: tuple[str, ...]) -> dict[str, dict[str, list[float]]]:
    """Per variant and key, the lowest and highest of the rounds' ratios to bare: each round ran
    every variant once, so round i of a variant is read against round i of bare."""
    return {
        name: {
            f"{key}_ratio_spread": [min(ratios), max(ratios)]
            for key in keys
            if (ratios := [run[key] / base[key] for run, base in zip(runs, rounds["bare"])])
        }
        for name, runs in rounds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8, help="per wrk run and per hey run")
    parser.add_argument("--cold-starts", type=int, default=9)  # one start varies by ±0.15x
    parser.add_argument("--build", type=Path, default=TEMPLATE / "build" / "bench")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--layers", action="store_true", help="also each layer turned off, and the floor (floor_app.py)")
    parser.add_argument("--queued-log", action="store_true",
                        help="also the service logging through a QueueListener thread (queued_log.py)")
    parser.add_argument("--start-only", action="store_true", help="only cold start, idle RSS and imports")
    args = parser.parse_args()

    project = bake(args.build)
    sink = subprocess.Popen(["taskset", "-c", "1", str(project / ".venv/bin/python"),
                             str(HERE / "otlp_sink.py"), str(SINK_PORT)])  # fmt: skip
    try:
        (start_only if args.start_only else run_all)(project, args)
    finally:
        sink.terminate()


SINK_PORT = free_port()  # the OTLP sink's, for this run
PRODUCTION = {
    "MY_SERVICE_ENVIRONMENT": "production",
    "MY_SERVICE_METRICS_TOKEN": "a-metrics-token-for-the-benchmark-0123456789",
    "MY_SERVICE_LOG_LEVEL": "INFO",
    "MY_SERVICE_CORS_ORIGINS": "https://app.example.com",
    "MY_SERVICE_RATE_LIMIT_DEFAULT": "100000000/minute",  # counted, never refused
    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{SINK_PORT}",
}
LAYERS = {  # each turns one layer off
    "without-tracing": {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
    "without-access-log": {"MY_SERVICE_ACCESS_LOG": "false"},
    "without-rate-limit": {"MY_SERVICE_RATE_LIMIT_ENABLED": "false"},
}


def run_all(project: Path, args: argparse.Namespace) -> None:
    # Bare means nothing added: no access log either.
    bare = Variant("bare", "bare_app:app", flags=("--no-access-log",))
    service = Variant("service", "-m", PRODUCTION)
    traced = Variant("service-trace-1", service.app, {**PRODUCTION, "MY_SERVICE_TRACE_SAMPLE_RATIO": "1.0"})
    pinned = [bare, service, traced]
    if args.layers:
        pinned += [Variant(f"service-{name}", service.app, {**PRODUCTION, **env}) for name, env in LAYERS.items()]
        pinned.append(Variant("floor", "floor_app:app", flags=bare.flags))  # what any service pays
    if args.queued_log:
        pinned.append(Variant("service-queued-log", "queued_log.py", PRODUCTION))
    workers = [Variant("service-1-worker", service.app, PRODUCTION, 1, None),
               Variant("service-2-workers", service.app, PRODUCTION, 2, None),
               Variant("bare-1-worker", bare.app, {}, 1, None, bare.flags),
               Variant("bare-2-workers", bare.app, {}, 2, None, bare.flags)]  # fmt: skip

    with serving(project, pinned) as servers:
        rounds = throughput(servers, pinned, args.rounds, args.seconds)
        medians = {name: summarise(runs) for name, runs in rounds.items()}
        spread = spreads(rounds, ("rps", "cpu_us_per_request"))
        qps = hey.per_worker_qps(medians["bare"]["rps"])
        rounds = fixed_load(servers, pinned, args.rounds, args.seconds, qps)
        latency = {name: summarise(runs) for name, runs in rounds.items()}
        latency_spread = spreads(rounds, ("p99_ms",))
    with serving(project, workers) as servers:
        rounds = throughput(servers, workers, args.rounds, args.seconds)
        scaling = {name: summarise(runs) for name, runs in rounds.items()}
    starts = cold_start(project, pinned, free_port(), args.cold_starts)
    imports = import_ms(project, [bare, service], free_port(), args.cold_starts)
    report = build_report(medians, latency, qps, scaling, starts, args, served_python(project),
                          spread, latency_spread)  # fmt: skip
    report["imports_ms"] = import_summary(imports["bare"], imports["service"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))


def start_only(project: Path, args: argparse.Namespace) -> None:
    """Cold start, idle RSS and imports of bare and the service (a), no load: a quick loop."""
    bare = Variant("bare", "bare_app:app", flags=("--no-access-log",))
    service = Variant("service", "-m", PRODUCTION)
    starts = cold_start(project, [bare, service], free_port(), args.cold_starts)
    imported = import_ms(project, [bare, service], free_port(), args.cold_starts)
    imports = import_summary(imported["bare"], imported["service"])
    busy = ", ".join(f"{load:.1f}" for load in os.getloadavg())
    print(f"{args.cold_starts} interleaved starts each, medians; load average {busy}\n\n"
          "| variant | cold start ms | × bare | idle RSS MiB | × bare | imports ms |\n|---|---:|---:|---:|---:|---:|")  # fmt: skip
    for name, (cold, rss) in starts.items():
        print(f"| {name} | {cold * 1000:.0f} | {cold / starts['bare'][0]:.2f} | {rss:.1f} "
              f"| {rss / starts['bare'][1]:.2f} | {imports[name]} |")  # fmt: skip
    added = ", ".join(f"{name} {ms:.0f}" for name, ms in imports["added_by_service"].items())
    print(f"\nThe service's imports beyond bare's, by package (ms): {added}")


def served_python(project: Path) -> str:
    command = [str(project / ".venv/bin/python"), "-c", "import platform, fastapi, uvicorn; "
               "print(f'Python {platform.python_version()}, FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__}')"]  # fmt: skip
    return subprocess.check_output(command, text=True).strip()


def build_report(medians: dict, latency: dict, qps: float, scaling: dict, starts: dict,
                 args: argparse.Namespace, versions: str, spread: dict, latency_spread: dict) -> dict:  # fmt: skip
    base, base_latency = medians["bare"], latency["bare"]
    rows = {}
    for name, m in medians.items():
        cold, rss = starts[name]
        at_load = {**latency[name], "p99_ratio": latency[name]["p99_ms"] / base_latency["p99_ms"],
                   **latency_spread[name]}  # fmt: skip
        rows[name] = {**m, "rps_ratio": m["rps"] / base["rps"], "p99_ratio": m["p99_ms"] / base["p99_ms"],
                      "cpu_ratio": m["cpu_us_per_request"] / base["cpu_us_per_request"],
                      "cold_start_s": cold, "cold_start_ratio": cold / starts["bare"][0],
                      "idle_rss_mib": rss, "rss_ratio": rss / starts["bare"][1], "fixed_load": at_load,
                      **spread[name]}  # fmt: skip
    two, one = scaling["service-2-workers"]["rps"], scaling["service-1-worker"]["rps"]
    bare_two, bare_one = scaling["bare-2-workers"]["rps"], scaling["bare-1-worker"]["rps"]
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs ({platform.machine()}); {versions}",
        "load_average": os.getloadavg(),  # 1, 5 and 15 minutes, at the end: how busy the machine was
        "method": f"wrk -t1 -c64, {args.rounds} interleaved rounds of {args.seconds}s, medians",
        "route": f"GET {ROUTE}",
        "fixed_load": {
            "method": f"hey -c {hey.WORKERS} -q {qps:.2f}, {args.rounds} interleaved rounds of {args.seconds}s, "
                      "medians",
            "offered_rps": qps * hey.WORKERS,
            "bare_capacity_rps": base["rps"],
        },
        "variants": rows,
        "workers": {"one_rps": one, "two_rps": two, "ratio": two / one, "bare_ratio": bare_two / bare_one},
    }


def import_summary(bare: Counter[str], service: Counter[str]) -> dict[str, Any]:
    added = {name: round(ms - bare[name], 1) for name, ms in service.items() if ms - bare[name] >= 5}
    return {"bare": round(sum(bare.values())), "service": round(sum(service.values())),
            "added_by_service": dict(sorted(added.items(), key=lambda item: -item[1]))}  # fmt: skip


def spread_text(spread: list[float]) -> str:
    """The rounds' lowest and highest ratio: how far one round can be trusted."""
    return f"{spread[0]:.2f}-{spread[1]:.2f}"


def markdown(report: dict) -> str:
    busy = ", ".join(f"{load:.1f}" for load in report.get("load_average", ()))
    lines = [f"{report['method']}; {report['machine']}; load average {busy}; {report['route']}", "",
             "| variant | req/s | × bare | rounds' × bare | p50 ms (saturated) | p99 ms (saturated) | p99 × bare | CPU µs/req | CPU × bare | rounds' CPU × bare | cold start × bare | idle RSS MiB | RSS × bare | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, r in report["variants"].items():
        lines.append(f"| {name} | {r['rps']:.0f} | {r['rps_ratio']:.2f} | {spread_text(r['rps_ratio_spread'])} "
                     f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p99_ratio']:.2f} | {r['cpu_us_per_request']:.0f} "
                     f"| {r['cpu_ratio']:.2f} | {spread_text(r['cpu_us_per_request_ratio_spread'])} "
                     f"| {r['cold_start_ratio']:.2f} | {r['idle_rss_mib']:.1f} "
                     f"| {r['rss_ratio']:.2f} | {r['errors']:.0f} |")  # fmt: skip
    load = report["fixed_load"]
    lines += ["", f"Latency at a fixed offered load of {load['offered_rps']:.0f} req/s, half of bare's "
                  f"{load['bare_capacity_rps']:.0f} ({load['method']}):", "",
              "| variant | answered req/s | p50 ms | p99 ms | p99 × bare | rounds' p99 × bare | non-2xx |",
              "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, r in report["variants"].items():
        f = r["fixed_load"]
        lines.append(f"| {name} | {f['rps']:.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} "
                     f"| {f['p99_ratio']:.2f} | {spread_text(f['p99_ms_ratio_spread'])} | {f['errors']:.0f} |")  # fmt: skip
    w = report["workers"]
    lines += ["", f"2 workers / 1 worker (both unpinned, wrk on the same 2 cores): service {w['ratio']:.2f}×, "
                  f"bare {w['bare_ratio']:.2f}×"]  # fmt: skip
    if imports := report.get("imports_ms"):
        added = ", ".join(f"{name} {ms:.0f}" for name, ms in imports["added_by_service"].items())
        lines += ["", f"Imports from process start to first 200 (ms): bare {imports['bare']}, "
                      f"service {imports['service']}; the service's additions by package: {added}"]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
