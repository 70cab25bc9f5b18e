"""The Grafana dashboards of each combination: every query parses (promtool), the dashboards
are those of the baked features, and Grafana in compose.yaml loads them on the Prometheus it
runs. That every metric a dashboard names is exported is checked where a real service (and
worker) runs: tests/test_observability.py and tests/test_messaging.py."""

import re
from pathlib import Path

import pytest
import yaml

from .conftest import Baked, run
from .dashboards import dashboards, metric_names, queries, rules_file
from .test_observability import needs


def test_the_metric_names_of_a_query_are_its_selectors_only() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, handler) (rate(a_bucket{job="$job", '
        'status=~"5xx|other"}[$__rate_interval])))\n  / on (handler) group_left '
        "max without (instance) (b_total offset 5m) > bool 0.5 unless c:ratio"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c:ratio"}


def test_every_dashboard_query_parses(baked: Baked, tmp_path: Path) -> None:
    promtool = needs("promtool")
    rules = tmp_path / "dashboards.rules.yml"
    count = rules_file(baked, rules)
    assert count == sum(len(queries(board)) for board in dashboards(baked).values()) > 0
    result = run([promtool, "check", "rules", str(rules)], tmp_path)
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_the_dashboards_are_those_of_the_baked_features(baked: Baked) -> None:
    expected = {"service.json", "dependencies.json"}
    if baked.context["database"] != "none":
        expected.add("database.json")
    if baked.context["messaging"] == "rabbitmq":
        expected.add("messaging-worker.json")
        outbox = baked.context["database"] != "none"
        expected.add("messaging-outbox.json" if outbox else "messaging-publisher.json")
    assert set(dashboards(baked)) == expected


def test_compose_runs_grafana_on_its_prometheus_with_the_dashboards(baked: Baked) -> None:
    services = yaml.safe_load((baked.path / "compose.yaml").read_text())["services"]
    grafana = baked.path / "deploy" / "grafana"
    [source] = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    [provider] = yaml.safe_load((grafana / "provisioning/dashboards/dashboards.yml").read_text())[
        "providers"
    ]
    url = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"])
    assert url, source["url"]
    host, port = url.groups()
    assert host in services and f"{port}:{port}" in services[host]["ports"][0]
    assert {board["panels"][1]["datasource"]["uid"] for board in dashboards(baked).values()} == {
        source["uid"]
    }
    assert services["grafana"]["volumes"][:2] == [
        "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
        f"./deploy/grafana/dashboards:{provider['options']['path']}:ro",
    ]
    assert services["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
