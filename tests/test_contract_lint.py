"""Every bake's OpenAPI document passes spectral with the OWASP API Security ruleset: 0 errors.

The rules switched off or narrowed, each with its reason, are in tests/spectral.yaml; spectral
itself is pinned in tests/package.json (`make test` installs it with npm ci). The document is
the app's own `openapi()`, built in-process by the bake's Python: nothing is served."""

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import TEMPLATE, Baked, run

SPECTRAL = TEMPLATE / "tests" / "node_modules" / ".bin" / "spectral"
RULESET = TEMPLATE / "tests" / "spectral.yaml"


def dump_document(installed: Baked, path: Path) -> None:
    dump = (
        f"import json, sys; from {installed.package}.main import app; "
        "json.dump(app.openapi(), sys.stdout)"
    )
    python = str(installed.path / ".venv" / "bin" / "python")
    path.write_text(run([python, "-c", dump], installed.path).stdout)


def test_the_openapi_document_passes_spectral_owasp(installed: Baked, tmp_path: Path) -> None:
    if not SPECTRAL.exists():
        pytest.fail(f"{SPECTRAL} is missing: run `make test` (npm ci --prefix tests)")
    # The ruleset lets auth=none's writes go without a security scheme, by this suffix.
    suffix = ".auth-none.json" if installed.context["auth"] == "none" else ".json"
    document = tmp_path / f"openapi{suffix}"
    dump_document(installed, document)
    assert json.loads(document.read_text())["paths"]
    linted = subprocess.run(
        [str(SPECTRAL), "lint", "--fail-severity=error", "-D", "-r", str(RULESET), str(document)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert linted.returncode == 0, f"spectral found errors:\n{linted.stdout}\n{linted.stderr}"
