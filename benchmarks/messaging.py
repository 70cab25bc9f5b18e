"""The messaging benchmark: what the transactional outbox costs a write, and how fast events go
from a write to the worker, against a real PostgreSQL and a real RabbitMQ started here.

Bakes the service twice from this checkout, database=postgresql with messaging=rabbitmq and with
messaging=none, starts a private PostgreSQL cluster and a private RabbitMQ node (the self-tests'
own fixtures: tests/test_database.py, tests/test_messaging.py), and serves both bakes side by
side (`python -m my_service`, one process each, logs at WARNING), each on a database of its own.
  write path   POST /api/v1/articles at a fixed concurrency (--concurrency, default 16) for
               --seconds, the two services alternately for --rounds rounds, medians: writes/s
               with the outbox (the article and its outbox row in one transaction, the relay
               publishing beside) against the same write without messaging, as a ratio
  end to end   with the worker running: --events articles written at that concurrency; events/s
               from the first write to the last event handled, and each event's latency from its
               outbox row's created_at to the worker's "handled" log line (p50, p99)
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
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
TEMPLATE = HERE.parent.parent
sys.path.insert(0, str(TEMPLATE))

import httpx  # noqa: E402

from tests.served import Service, free_port, start_service  # noqa: E402
from tests.test_database import Postgres, postgres_bin  # noqa: E402
from tests.test_messaging import RabbitMQ  # noqa: E402

URL = "/api/v1/articles"
PACKAGE = "my_service"


def bake(build: Path, messaging: str) -> Path:
    from cookiecutter.main import cookiecutter

    output = build / messaging
    output.mkdir(parents=True, exist_ok=True)
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output),
                                overwrite_if_exists=True, extra_context={"messaging": messaging}))  # fmt: skip
    subprocess.run(["uv", "sync", "--no-dev", "--no-editable", "--compile-bytecode"],
                   cwd=project, check=True, capture_output=True)  # fmt: skip
    return project


def migrate(project: Path, url: str) -> None:
    env = {**os.environ, "MY_SERVICE_DATABASE_URL": url}
    subprocess.run([str(project / ".venv/bin/alembic"), "upgrade", "head"], cwd=project, env=env,
                   check=True, capture_output=True)  # fmt: skip


def settings(url: str, broker: str) -> dict[str, str]:
    return {
        "MY_SERVICE_DATABASE_URL": url,
        "MY_SERVICE_BROKER_URL": broker,
        "MY_SERVICE_RATE_LIMIT_DEFAULT": "10000000/minute",
        "MY_SERVICE_RATE_LIMIT_WRITE": "10000000/minute",
        "MY_SERVICE_ACCESS_LOG": "false",
        "MY_SERVICE_LOG_LEVEL": "WARNING",
        "MY_SERVICE_LOG_FORMAT": "json",
        "MY_SERVICE_WORKER_METRICS_PORT": "0",
    }


async def write_for(base: str, seconds: float, concurrency: int, prefix: str) -> int:
    """Articles created in `seconds` by `concurrency` clients writing one after the other."""
    deadline = time.perf_counter() + seconds
    done = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def writer(number: int) -> None:
            nonlocal done
            sequence = 0
            while time.perf_counter() < deadline:
                body = {"name": f"{prefix} {number}-{sequence}", "price": 1}
                response = await client.post(URL, json=body)
                assert response.status_code == 201, response.text  # nosec B101
                done += 1
                sequence += 1

        await asyncio.gather(*(writer(n) for n in range(concurrency)))
    return done


async def write_count(base: str, count: int, concurrency: int) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def writer() -> None:
            while not queue.empty():
                number = queue.get_nowait()
                response = await client.post(URL, json={"name": f"Event {number}", "price": 1})
                assert response.status_code == 201, response.text  # nosec B101

        await asyncio.gather(*(writer() for _ in range(concurrency)))


def handled_times(worker: Service) -> dict[str, float]:
    times = {}
    for line in list(worker.output):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("message") == "handled":
            times[entry["message_id"]] = datetime.fromisoformat(entry["timestamp"]).timestamp()
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def end_to_end(project: Path, env: dict[str, str], base: str, postgres: Postgres, name: str,
               events: int, concurrency: int) -> dict[str, float]:  # fmt: skip
    worker_process = subprocess.Popen(
        [str(project / ".venv/bin/python"), "-m", f"{PACKAGE}.worker"],
        cwd=project, env={**os.environ, **env, "MY_SERVICE_LOG_LEVEL": "INFO"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    worker = Service(worker_process, "")
    try:
        while not any('"consuming"' in line for line in list(worker.output)):
            time.sleep(0.1)
        asyncio.run(write_count(base, events, concurrency))
        deadline = time.monotonic() + 300
        while len(handled_times(worker)) < events and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.stop()
    handled = handled_times(worker)
    rows = postgres.sql(
        "SELECT string_agg(message_id || ' ' || extract(epoch FROM created_at), ',') FROM outbox"
        " WHERE type = 'article.created' AND (data ->> 'name') LIKE 'Event %'", name
    )
    created = {mid: float(at) for mid, at in (row.split(" ") for row in rows.split(","))}
    latencies = [handled[mid] - created[mid] for mid in created if mid in handled]
    span = max(handled.values()) - min(created.values())
    return {
        "events": len(latencies),
        "events_per_s": len(latencies) / span,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--build", type=Path, default=TEMPLATE / "build" / "bench-messaging")
    args = parser.parse_args()

    projects = {name: bake(args.build, name) for name in ("rabbitmq", "none")}
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    pg_folder, mq_folder = folder / "postgres", folder / "rabbitmq"
    pg_folder.mkdir()
    mq_folder.mkdir()
    (mq_folder / "enabled_plugins").write_text("[].\n")
    if os.geteuid() == 0:
        import shutil

        for path in (folder, pg_folder, mq_folder, mq_folder / "enabled_plugins"):
            shutil.chown(path, "postgres" if path == pg_folder else "rabbitmq")
        os.chmod(folder, 0o755)
    postgres = Postgres(postgres_bin(), pg_folder, free_port())
    rabbitmq = RabbitMQ(mq_folder, free_port(), free_port(), free_port())
    init = postgres.command("initdb", "-D", str(pg_folder / "data"), "-U", "postgres", "-A", "trust")
    services: dict[str, Service] = {}
    try:
        subprocess.run(init, check=True, capture_output=True, timeout=120)
        postgres.pg_ctl("start")
        rabbitmq.start()
        envs, names = {}, {}
        for variant, project in projects.items():
            url = postgres.new_database()
            migrate(project, url)
            names[variant] = url.rsplit("/", 1)[1]
            envs[variant] = settings(url, rabbitmq.url)
            services[variant] = start_service(project, PACKAGE, envs[variant])
        writes: dict[str, list[float]] = {variant: [] for variant in projects}
        for round_number in range(args.rounds):
            order = list(projects) if round_number % 2 == 0 else list(reversed(projects))
            for variant in order:
                done = asyncio.run(write_for(services[variant].url, args.seconds,
                                             args.concurrency, f"R{round_number}"))  # fmt: skip
                writes[variant].append(done / args.seconds)
        flow = end_to_end(projects["rabbitmq"], envs["rabbitmq"], services["rabbitmq"].url,
                          postgres, names["rabbitmq"], args.events, args.concurrency)  # fmt: skip
    finally:
        for service in services.values():
            service.stop()
        rabbitmq.stop()
        if rabbitmq.epmd is not None:
            rabbitmq.epmd.terminate()
        subprocess.run(postgres.command("pg_ctl", "stop", "-D", str(pg_folder / "data"), "-m",
                                        "immediate"), capture_output=True, check=False)  # fmt: skip

    outbox, plain = statistics.median(writes["rabbitmq"]), statistics.median(writes["none"])
    print(f"\n{platform.python_implementation()} {platform.python_version()}, "
          f"{args.rounds} rounds of {args.seconds:g} s at concurrency {args.concurrency}\n")  # fmt: skip
    print("| measure | value |\n|---|---:|")
    print(f"| writes/s without messaging (median) | {plain:,.0f} |")
    print(f"| writes/s with the outbox (median) | {outbox:,.0f} |")
    print(f"| outbox write throughput, x without messaging | {outbox / plain:.2f} |")
    print(f"| events written then handled | {flow['events']:,.0f} |")
    print(f"| events/s, first write to last handled | {flow['events_per_s']:,.0f} |")
    print(f"| end-to-end latency p50 / p99 (ms) | {flow['p50_ms']:.1f} / {flow['p99_ms']:.1f} |")


if __name__ == "__main__":
    main()
