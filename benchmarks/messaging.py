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
  end to end   with the worker running: --events articles written at --rate per second (open
               loop, below capacity); events/s from the first write to the last event handled, and each event's latency from its
               outbox row's created_at to the worker's "handled" log line (p50, p99), and the
               part of it spent in the outbox (created_at to published_at)
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
from tests.rabbitmq import RabbitMQ, prepare  # noqa: E402

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


async def write_count(base: str, count: int, rate: float) -> None:
    """`count` articles at `rate` per second, open loop: each sent at its time, answered or not
    (below the service's capacity, so latency is not queueing behind a saturated server)."""
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def write(number: int) -> None:
            await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
            response = await client.post(URL, json={"name": f"Event {number}", "price": 1})
            assert response.status_code == 201, response.text  # nosec B101

        await asyncio.gather(*(write(number) for number in range(count)))


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
               events: int, rate: float) -> dict[str, float]:  # fmt: skip
    worker_process = subprocess.Popen(
        [str(project / ".venv/bin/python"), "-m", f"{PACKAGE}.worker"],
        cwd=project, env={**os.environ, **env, "MY_SERVICE_LOG_LEVEL": "INFO"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    worker = Service(worker_process, "")
    rows_query = (
        "SELECT string_agg(message_id || ' ' || extract(epoch FROM created_at) || ' '"
        " || coalesce(extract(epoch FROM published_at), 0), ',') FROM outbox"
        " WHERE type = 'article.created' AND (data ->> 'name') LIKE 'Event %'"
    )
    try:
        # First the backlog the write rounds left in the queue: measured from an empty queue.
        seen = -1
        while seen != len(handled_times(worker)) or not seen:
            seen = len(handled_times(worker))
            time.sleep(2)
        asyncio.run(write_count(base, events, rate))
        created = {row.split(" ")[0]: float(row.split(" ")[1])
                   for row in postgres.sql(rows_query, name).split(",")}  # fmt: skip
        deadline = time.monotonic() + 300
        while not created.keys() <= handled_times(worker).keys() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        (project.parent.parent / "worker.log").write_text(worker.stop())
    published = {row.split(" ")[0]: float(row.split(" ")[2])
                 for row in postgres.sql(rows_query, name).split(",")}  # fmt: skip
    relayed = [published[mid] - created[mid] for mid in created]
    handled = {mid: at for mid, at in handled_times(worker).items() if mid in created}
    latencies = [handled[mid] - created[mid] for mid in created if mid in handled]
    span = max(handled.values()) - min(created.values())
    outcomes: dict[str, int] = {}
    for line in worker.output:
        if line.startswith("{"):
            message = json.loads(line).get("message", "")
            outcomes[message] = outcomes.get(message, 0) + 1
    print("worker log lines by message:", outcomes)  # any failure shows here
    return {
        "events": len(latencies),
        "events_per_s": len(latencies) / span,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "relay_p50_ms": 1000 * percentile(relayed, 0.50),
        "relay_p99_ms": 1000 * percentile(relayed, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="events/s offered end to end")
    parser.add_argument("--build", type=Path, default=TEMPLATE / "build" / "bench-messaging")
    args = parser.parse_args()

    projects = {name: bake(args.build, name) for name in ("rabbitmq", "none")}
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    pg_folder, mq_folder = folder / "postgres", folder / "rabbitmq"
    pg_folder.mkdir()
    mq_folder.mkdir()
    prepare(mq_folder)
    if os.geteuid() == 0:
        import shutil

        shutil.chown(pg_folder, "postgres")
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
                          postgres, names["rabbitmq"], args.events, args.rate)  # fmt: skip
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
    print(f"| events offered per second (open loop) | {args.rate:g} |")
    print(f"| events/s, first write to last handled | {flow['events_per_s']:,.0f} |")
    print(f"| end-to-end latency p50 / p99 (ms) | {flow['p50_ms']:.1f} / {flow['p99_ms']:.1f} |")
    print(f"| of which in the outbox, p50 / p99 (ms) | {flow['relay_p50_ms']:.1f} / "
          f"{flow['relay_p99_ms']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
