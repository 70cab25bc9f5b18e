"""Run hey at a fixed offered load (open loop, below saturation) and read its per-request CSV."""

import csv
import io
import math
import shutil
import subprocess

WORKERS = 20


def per_worker_qps(capacity_rps: float, workers: int = WORKERS) -> float:
    """hey's -q is per worker: the rate that makes `workers` of them offer half of `capacity_rps`."""
    return capacity_rps / 2 / workers


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value that at least `fraction` of the values do not exceed."""
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def parse_csv(report: str, seconds: float) -> dict[str, float]:
    """Requests answered, their rate, p50 and p99 (ms) and the non-2xx count from `hey -o csv`.
    hey leaves requests that got no response (refused, timed out) out of the CSV: they show as an
    answered rate below the offered one."""
    rows = list(csv.DictReader(io.StringIO(report)))
    if not rows or "response-time" not in rows[0] or "status-code" not in rows[0]:
        raise ValueError(f"unreadable hey CSV (no answered request):\n{report[:500]}")
    latencies = sorted(float(row["response-time"]) * 1000 for row in rows)
    return {
        "requests": float(len(rows)),
        "rps": len(rows) / seconds,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "errors": float(sum(not row["status-code"].startswith("2") for row in rows)),
    }


def run(url: str, seconds: int, qps: float, workers: int = WORKERS, cpu: str | None = None) -> dict[str, float]:
    command = ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", f"{qps:.2f}", "-o", "csv", url]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", cpu, *command]
    report = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_csv(report, seconds)
