"""The Grafana dashboards of deploy/grafana/: valid JSON, on the data source that is provisioned,
and a query in every panel (the template's own tests check each query against a real scrape)."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

GRAFANA = Path(__file__).resolve().parents[1] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
VARIABLE = re.compile(r"\$(\w+)")
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range"}  # Grafana's own


def provisioned_uid() -> str:
    text = (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    uids: list[str] = re.findall(r"^\s+uid: (\S+)$", text, flags=re.MULTILINE)
    [uid] = uids
    return uid


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels that show data: rows only group them."""
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_the_service_and_its_dependencies_have_dashboards() -> None:
    assert {"service.json", "dependencies.json"} <= {path.name for path in DASHBOARDS}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_panel_queries_the_provisioned_data_source(path: Path) -> None:
    dashboard = load(path)
    uid = provisioned_uid()
    assert panels(dashboard)
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target.get("datasource", panel["datasource"])["uid"] == uid
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_variable_a_query_uses_is_defined(path: Path) -> None:
    dashboard = load(path)
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    used = {
        name
        for panel in panels(dashboard)
        for target in panel["targets"]
        for name in VARIABLE.findall(target["expr"])
    }
    assert used - GRAFANA_VARIABLES <= defined


def test_every_dashboard_has_its_own_uid_and_title() -> None:
    dashboards = [load(path) for path in DASHBOARDS]
    assert len({dashboard["uid"] for dashboard in dashboards}) == len(dashboards)
    assert len({dashboard["title"] for dashboard in dashboards}) == len(dashboards)
