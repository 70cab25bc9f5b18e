"""The Grafana dashboards of a bake, read as Prometheus sees them: each panel's query with
Grafana's variables filled in, the metric names each query selects, and the metric names a
/metrics text exports (a histogram's family as its _bucket, _count and _sum series)."""

import json
import re
from pathlib import Path
from typing import Any

from .conftest import Baked

WORKER_DASHBOARD = "messaging-worker.json"  # the worker's own metrics; every other, the service's
STRING = re.compile(r'"(?:\\.|[^"\\])*"')
MATCHERS = re.compile(r"\{[^}]*\}")
RANGE = re.compile(r"\[[^\]]*\]")
GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring)\s*\([^)]*\)|\bgroup_(?:left|right)\b(?:\s*\([^)]*\))?"
)
# An identifier, not the unit of a duration or a number's exponent (5m, 1e3); followed by "("
# it is a function or an aggregation, not a metric.
IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "Inf", "NaN"}
LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")
SERIES_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}


def dashboards(baked: Baked) -> dict[str, dict[str, Any]]:
    folder = baked.path / "deploy" / "grafana" / "dashboards"
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every panel's PromQL, as written (Grafana's variables unfilled)."""
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def filled(expr: str, baked: Baked) -> str:
    """The query as Grafana sends it for the compose stack's jobs (deploy/prometheus)."""
    slug = baked.context["project_slug"]
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$worker", f"{slug}-worker")
        .replace("$job", slug)
    )


def metric_names(expr: str) -> set[str]:
    """The metrics a PromQL expression selects: its identifiers once the strings, the label
    matchers, the ranges and the grouping clauses are gone, minus functions and keywords."""
    for pattern in (STRING, MATCHERS, RANGE, GROUPING):
        expr = pattern.sub(" ", expr)
    return {
        name
        for name, call in IDENTIFIER.findall(expr)
        if not call and name not in KEYWORDS
    }


def named_metrics(dashboard: dict[str, Any]) -> set[str]:
    """The metrics a dashboard's panels and variables name."""
    names = {name for expr in queries(dashboard) for name in metric_names(expr)}
    for variable in dashboard["templating"]["list"]:
        names.update(LABEL_VALUES.findall(variable["definition"]))
    return names


def exported(metrics_text: str) -> set[str]:
    """The series names of a Prometheus text exposition: each sample's, and each declared
    family's (one with no sample yet, a labelled counter nobody incremented, is declared)."""
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split()[:4]
            names.add(family)
            names.update(family + suffix for suffix in SERIES_SUFFIXES.get(kind, ()))
        elif line and not line.startswith("#"):
            match = IDENTIFIER.match(line)
            assert match, line
            names.add(match.group(1))
    return names


def unexported(baked: Baked, metrics_text: str, worker: bool) -> dict[str, set[str]]:
    """Per dashboard (the worker's, or the service's others), the metrics it names that the
    /metrics text does not export."""
    missing = {}
    for name, dashboard in dashboards(baked).items():
        if (name == WORKER_DASHBOARD) != worker:
            continue
        names = named_metrics(dashboard)
        assert names, f"{name} names no metric"
        missing[name] = names - exported(metrics_text)
    assert missing, "no dashboard to check"
    return {name: names for name, names in missing.items() if names}


def record_name(dashboard: str) -> str:
    return Path(dashboard).stem.replace("-", "_")


def rules_file(baked: Baked, path: Path) -> int:
    """Writes every dashboard query as a recording rule (for `promtool check rules`); returns
    how many."""
    rules = [
        {"record": f"dashboard:{record_name(name)}:{number}", "expr": filled(expr, baked)}
        for name, dashboard in dashboards(baked).items()
        for number, expr in enumerate(queries(dashboard))
    ]
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}, indent=2))
    return len(rules)
