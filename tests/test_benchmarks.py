"""The benchmark's reading of wrk reports (the benchmark itself runs with `make bench`)."""

import sys

import pytest

from .conftest import TEMPLATE

sys.path.insert(0, str(TEMPLATE / "benchmarks"))
import wrk  # noqa: E402

REPORT = """Running 8s test @ http://127.0.0.1:18101/api/v1/articles/1
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    13.40ms    2.10ms  40.12ms   91.00%
    Req/Sec     4.80k   300.00     5.10k    90.00%
  Latency Distribution
     50%   12.91ms
     75%   13.50ms
     90%   14.80ms
     99%  850.00us
  38400 requests in 8.00s, 6.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   4800.50
Transfer/sec:    768.00KB
"""


def test_a_wrk_report_gives_rate_percentiles_in_ms_and_errors() -> None:
    assert wrk.parse(REPORT) == {
        "requests": 38400, "rps": 4800.5, "p50_ms": 12.91, "p99_ms": 0.85, "errors": 9
    }


@pytest.mark.parametrize(("text", "ms"), [("850.00us", 0.85), ("1.50ms", 1.5), ("2.00s", 2000.0)])
def test_wrk_durations_convert_to_milliseconds(text: str, ms: float) -> None:
    assert wrk.to_ms(text) == pytest.approx(ms)


def test_an_unreadable_report_is_refused() -> None:
    with pytest.raises(ValueError, match="unreadable wrk report"):
        wrk.parse("connection refused")


def test_instruction_counts_are_read_per_variant_from_callgrinds_dumps(tmp_path) -> None:
    import instructions

    dumps = [("bare", 4000), ("service", 5900), ("service", 6100), ("without x", 5000)]
    for number, (name, total) in enumerate(dumps):  # one process per variant and hash seed
        text = f"version: 1\ndesc: Trigger: Client Request: {name}\nevents: Ir\nsummary: {total}\n"
        (tmp_path / f"callgrind.{number}.out.1").write_text(text)
    (tmp_path / "callgrind.10.out").write_text("desc: Trigger: Program termination\nsummary: 9\n")
    counts = instructions.count(tmp_path, requests=10)
    assert counts == {"bare": 400.0, "service": 600.0, "without x": 500.0}
    table = instructions.report(counts, 10).splitlines()
    assert table[-2:] == ["| service | 600 | 1.50 |  |", "| without x | 500 | 1.25 | -100 |"]


def test_import_times_are_read_by_package_and_the_services_additions_ranked() -> None:
    from collections import Counter

    import bench

    log = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       500 |        500 |   _io\n"
        "import time:      2000 |      12000 | fastapi.routing\n"
        "import time:      3000 |       3000 |     opentelemetry.sdk.trace\n"
        '{"level": "INFO", "message": "starting"}\n'
    )
    assert bench.IMPORT_LINE.findall(log) == [
        ("500", "_io"), ("2000", "fastapi.routing"), ("3000", "opentelemetry.sdk.trace")
    ]
    bare = Counter({"fastapi": 900.0, "click": 100.0})
    service = Counter({"fastapi": 902.0, "click": 100.0, "limits": 60.0, "google": 140.0})
    assert bench.import_summary(bare, service) == {
        "bare": 1000, "service": 1202, "added_by_service": {"google": 140.0, "limits": 60.0}
    }
