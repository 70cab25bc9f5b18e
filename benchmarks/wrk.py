"""Run wrk and read its report."""

import re
import shutil
import subprocess

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not match:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(match[1]) * UNITS[match[2]]


def parse(report: str) -> dict[str, float]:
    """Requests, req/s, p50 and p99 (ms) and the error count from `wrk --latency` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", report)
    p50 = re.search(r"^\s+50%\s+(\S+)", report, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", report, re.M)
    if not (rps and p50 and p99):
        raise ValueError(f"unreadable wrk report:\n{report}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", report))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    total = re.search(r"(\d+) requests in", report)
    return {
        "requests": float(total[1]) if total else 0.0,
        "rps": float(rps[1]),
        "p50_ms": to_ms(p50[1]),
        "p99_ms": to_ms(p99[1]),
        "errors": errors + (int(non_2xx[1]) if non_2xx else 0),
    }


def run(url: str, seconds: int, connections: int = 64, cpu: str | None = None) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", cpu, *command]
    report = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse(report)
