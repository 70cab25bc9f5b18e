"""The template repository itself: its CI covers every combination, its README every option,
and its workflow passes the offline checks."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .combinations import COMBINATIONS
from .conftest import TEMPLATE

WORKFLOW = TEMPLATE / ".github" / "workflows" / "template-ci.yml"


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed (requirements-dev.txt)"
    return found


def test_the_ci_matrix_bakes_every_combination() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["jobs"]["bake"]["strategy"]["matrix"]["combination"] == list(COMBINATIONS)


def test_the_readme_documents_every_option() -> None:
    options = [k for k in json.loads((TEMPLATE / "cookiecutter.json").read_text()) if k[0] != "_"]
    readme = (TEMPLATE / "README.md").read_text()
    assert [option for option in options if f"| `{option}` |" not in readme] == []


def test_the_workflow_matches_the_github_workflow_schema() -> None:
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    result = subprocess.run([*command, str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_in_the_workflow_even_pedantic() -> None:
    command = [tool("zizmor"), "--offline", "--persona=pedantic", str(WORKFLOW)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr
