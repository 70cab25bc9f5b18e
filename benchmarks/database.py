"""The database variant of the benchmark: GET /api/v1/articles/1 from PostgreSQL, side by side.

Bakes the service with database=postgresql, starts a private PostgreSQL cluster (as the
self-tests do), migrates one database and serves from it:
  service-db  the production configuration with every feature on (as `make bench`'s (a)), the
              article read through the repository, one session per request, ETag
  bare-db     bare FastAPI doing the same query on an engine with the same pool
              (bare_db_app.py)
Both use the same database. The servers run on CPU 0; the load generators and PostgreSQL (its
postmaster pinned, so every backend it forks) share CPU 1, so that the server measured has its
CPU to itself, as in bench.py. Throughput at saturation (wrk), CPU per request, then
latency at a fixed load of half bare-db's capacity (hey). Prints a Markdown table and writes JSON
(benchmarks/results/database.json). Asserts nothing: ratios to bare-db measured in the same run.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import bench
import hey

sys.path.insert(0, str(bench.TEMPLATE))
from tests.postgres import private_cluster  # noqa: E402 (the self-tests' private cluster)


def pin_to_cpu_1(folder: Path) -> None:
    """The postmaster and what it forks later (each connection's backend) on CPU 1."""
    postmaster = (folder / "data" / "postmaster.pid").read_text().split()[0]
    subprocess.run(["taskset", "-a", "-p", "-c", "1", postmaster], check=True, capture_output=True)


def migrate(project: Path, url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "MY_SERVICE_DATABASE_URL": url}
    subprocess.run([str(project / ".venv/bin/alembic"), "upgrade", "head"], cwd=project, env=env,
                   check=True, capture_output=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8, help="per wrk run and per hey run")
    parser.add_argument("--build", type=Path, default=bench.TEMPLATE / "build" / "bench-database")
    parser.add_argument("--out", type=Path, default=bench.HERE / "results" / "database.json")
    args = parser.parse_args()

    project = bench.bake(args.build, database="postgresql")
    sink = subprocess.Popen(["taskset", "-c", "1", str(project / ".venv/bin/python"),
                             str(bench.HERE / "otlp_sink.py"), str(bench.SINK_PORT)])  # fmt: skip
    try:
        with private_cluster() as postgres:
            pin_to_cpu_1(postgres.folder)
            url = postgres.new_database()
            migrate(project, url)
            report = run(project, url, args)
    finally:
        sink.terminate()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))


def run(project: Path, url: str, args: argparse.Namespace) -> dict:
    # The service first: serving() creates article 1 through it before any warm-up.
    service = bench.Variant("service-db", "-m", {**bench.PRODUCTION, "MY_SERVICE_DATABASE_URL": url})
    bare = bench.Variant("bare-db", "bare_db_app:app", {"BENCH_DATABASE_URL": url}, flags=("--no-access-log",))
    variants = [service, bare]
    with bench.serving(project, variants) as servers:
        saturated = {n: bench.summarise(r) for n, r in bench.throughput(servers, variants, args.rounds, args.seconds).items()}
        qps = hey.per_worker_qps(saturated["bare-db"]["rps"])
        at_load = {n: bench.summarise(r) for n, r in bench.fixed_load(servers, variants, args.rounds, args.seconds, qps).items()}
    base, base_load = saturated["bare-db"], at_load["bare-db"]
    rows = {
        name: {**m, "rps_ratio": m["rps"] / base["rps"],
               "cpu_ratio": m["cpu_us_per_request"] / base["cpu_us_per_request"],
               "p99_ratio": m["p99_ms"] / base["p99_ms"],
               "fixed_load": {**at_load[name], "p99_ratio": at_load[name]["p99_ms"] / base_load["p99_ms"]}}
        for name, m in saturated.items()
    }  # fmt: skip
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": bench.served_python(project),
        "method": f"wrk -t1 -c64, {args.rounds} interleaved rounds of {args.seconds}s, medians; then "
                  f"hey -c {hey.WORKERS} -q {qps:.2f} (half of bare-db's capacity), as many rounds",
        "route": f"GET {bench.ROUTE} from PostgreSQL",
        "variants": rows,
    }


def markdown(report: dict) -> str:
    lines = [f"{report['method']}; {report['machine']}; {report['route']}", "",
             "| variant | req/s | × bare-db | CPU µs/req | CPU × bare-db | p99 ms (saturated) | p50 ms at half load | p99 ms at half load | p99 × bare-db | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, r in report["variants"].items():
        f = r["fixed_load"]
        lines.append(f"| {name} | {r['rps']:.0f} | {r['rps_ratio']:.2f} | {r['cpu_us_per_request']:.0f} "
                     f"| {r['cpu_ratio']:.2f} | {r['p99_ms']:.2f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} "
                     f"| {f['p99_ratio']:.2f} | {r['errors'] + f['errors']:.0f} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
