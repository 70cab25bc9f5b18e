"""The benchmarks' reading of wrk, hey, callgrind and importtime output (the benchmarks themselves
run with `make bench`, `make bench-instructions`; nothing here is timed)."""

import sys

import pytest

from .conftest import TEMPLATE

sys.path.insert(0, str(TEMPLATE / "benchmarks"))
import hey  # noqa: E402
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


# Real `hey -n 16 -c 4 -q 20 -o csv` output against bare_app.py, then against a missing article.
HEY_CSV = """response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
0.0025,0.0002,0.0000,0.0001,0.0017,0.0001,200,0.0506
0.0021,0.0001,0.0000,0.0001,0.0018,0.0000,200,0.0510
0.0022,0.0001,0.0000,0.0001,0.0019,0.0001,200,0.0511
0.0030,0.0022,0.0000,0.0001,0.0005,0.0000,200,0.0506
0.0011,0.0000,0.0000,0.0001,0.0008,0.0002,200,0.1008
0.0013,0.0000,0.0000,0.0000,0.0012,0.0001,200,0.1010
0.0015,0.0000,0.0000,0.0000,0.0015,0.0000,200,0.1010
0.0010,0.0000,0.0000,0.0000,0.0010,0.0000,200,0.1018
0.0011,0.0000,0.0000,0.0000,0.0009,0.0001,200,0.1513
0.0013,0.0000,0.0000,0.0000,0.0012,0.0001,200,0.1514
0.0016,0.0000,0.0000,0.0000,0.0015,0.0000,200,0.1514
0.0011,0.0000,0.0000,0.0000,0.0011,0.0001,200,0.1522
0.0011,0.0000,0.0000,0.0000,0.0009,0.0001,200,0.2007
0.0013,0.0000,0.0000,0.0000,0.0013,0.0001,200,0.2008
0.0016,0.0000,0.0000,0.0000,0.0015,0.0001,200,0.2008
0.0011,0.0000,0.0000,0.0000,0.0010,0.0001,200,0.2016
"""
HEY_CSV_404 = """response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
0.0011,0.0004,0.0000,0.0001,0.0006,0.0001,404,0.0510
0.0021,0.0000,0.0000,0.0000,0.0003,0.0001,404,0.0504
0.0011,0.0000,0.0000,0.0000,0.0009,0.0001,404,0.1008
0.0010,0.0000,0.0000,0.0000,0.0009,0.0000,404,0.1009
"""


def test_a_hey_csv_gives_answered_rate_percentiles_in_ms_and_no_errors() -> None:
    result = hey.parse_csv(HEY_CSV, seconds=0.25)
    assert result == {
        "requests": 16, "rps": 64.0, "p50_ms": pytest.approx(1.3), "p99_ms": pytest.approx(3.0), "errors": 0
    }


def test_hey_responses_other_than_2xx_count_as_errors() -> None:
    assert hey.parse_csv(HEY_CSV_404, seconds=1)["errors"] == 4


def test_a_hey_csv_without_answered_requests_is_refused() -> None:
    header_only = HEY_CSV.splitlines()[0] + "\n"  # what hey prints when every connection is refused
    with pytest.raises(ValueError, match="unreadable hey CSV"):
        hey.parse_csv(header_only, seconds=8)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 201)]
    assert (hey.percentile(values, 0.50), hey.percentile(values, 0.99)) == (100.0, 198.0)
    assert hey.percentile([7.0], 0.99) == 7.0


def test_the_offered_load_is_half_of_bares_capacity_over_the_workers() -> None:
    qps = hey.per_worker_qps(8555.0)
    assert qps * hey.WORKERS == pytest.approx(8555.0 / 2)
    assert hey.per_worker_qps(1000.0, workers=10) == 50.0


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


def test_instruction_variants_chosen_keep_bare_and_service_and_their_order() -> None:
    import instructions

    access_log = "without the access log"
    assert instructions.chosen([access_log]) == ["bare", "service", access_log]
    assert instructions.chosen(["without CORS", "bare"]) == ["bare", "service", "without CORS"]
    assert instructions.chosen(list(instructions.VARIANTS)) == list(instructions.VARIANTS)


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


def test_the_report_offers_half_of_bares_measured_rate_and_compares_p99_at_that_load() -> None:
    import argparse

    import bench

    def saturated(rps: float) -> dict[str, float]:
        return {"requests": rps * 8, "rps": rps, "p50_ms": 7.0, "p99_ms": 20.0, "errors": 0,
                "cpu_us_per_request": 1e6 / rps}

    def at_load(p99: float) -> dict[str, float]:
        return {"requests": 32000, "rps": 4000.0, "p50_ms": 1.3, "p99_ms": p99, "errors": 0}

    medians = {"bare": saturated(8000), "service": saturated(6000)}
    latency = {"bare": at_load(5.0), "service": at_load(7.5)}
    scaling = ("service-1-worker", "service-2-workers", "bare-1-worker", "bare-2-workers")
    workers = {name: saturated(1000) for name in scaling}
    starts = {"bare": (0.5, 50.0), "service": (0.7, 60.0)}
    args = argparse.Namespace(rounds=5, seconds=8)
    rounds = {"bare": [saturated(8000), saturated(9000)], "service": [saturated(6000), saturated(5400)]}
    spread = bench.spreads(rounds, ("rps", "cpu_us_per_request"))
    latency_spread = bench.spreads({name: [run] for name, run in latency.items()}, ("p99_ms",))
    report = bench.build_report(medians, latency, hey.per_worker_qps(8000), workers, starts, args, "Python 3",
                                spread, latency_spread)
    assert report["fixed_load"]["offered_rps"] == pytest.approx(4000)
    assert report["fixed_load"]["method"].startswith("hey -c 20 -q 200.00, 5 interleaved rounds of 8s")
    assert report["variants"]["service"]["fixed_load"]["p99_ratio"] == pytest.approx(1.5)
    assert report["variants"]["service"]["rps_ratio"] == pytest.approx(0.75)
    assert report["variants"]["service"]["rps_ratio_spread"] == pytest.approx([0.6, 0.75])
    assert report["variants"]["service"]["cpu_us_per_request_ratio_spread"] == pytest.approx([1 / 0.75, 1 / 0.6])
    lines = bench.markdown(report).splitlines()
    assert "| service | 4000 | 1.30 | 7.50 | 1.50 | 1.50-1.50 | 0 |" in lines
    assert any(line.startswith("| service | 6000 | 0.75 | 0.60-0.75 |") for line in lines)
