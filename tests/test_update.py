"""Lifecycle: a project baked with cruft, or linked to cruft after a plain cookiecutter bake,
learns of template changes and takes them."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import TEMPLATE, run
from .test_template import tool

SETTINGS = Path("{{cookiecutter.project_slug}}/src/{{cookiecutter.package_name}}/settings.py")
ENV_EXAMPLE = Path("{{cookiecutter.project_slug}}/.env.example")
OLD_DEFAULT = "readiness_timeout_seconds: float = Field(default=2.0,"
OLD_EXAMPLE = "_READINESS_TIMEOUT_SECONDS=2.0"
# Not the template: what `make test` installs or writes beside it (spectral in tests/node_modules).
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", ".cache", "build", "__pycache__", ".pytest_cache", "node_modules"
)


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Template Tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@example.com")


def commit_all(repo: Path, message: str) -> None:
    if not (repo / ".git").exists():
        run(["git", "init", "-q", "-b", "main"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", message], repo)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """This working tree, committed into a fresh repository (as a clone of it would be)."""
    copy = tmp_path / "template"
    shutil.copytree(TEMPLATE, copy, ignore=IGNORED)
    commit_all(copy, "template as it is")
    return copy


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    run([tool("cruft"), "create", "--no-input", str(template)], tmp_path)
    baked = tmp_path / "my-service"
    commit_all(baked, "baked with cruft")
    return baked


def change_template(template: Path, new_default: str) -> None:
    edit(template / SETTINGS, OLD_DEFAULT, OLD_DEFAULT.replace("2.0", new_default))
    edit(template / ENV_EXAMPLE, OLD_EXAMPLE, OLD_EXAMPLE.replace("2.0", new_default))
    runbook = template / "{{cookiecutter.project_slug}}" / "docs" / "runbook.md"
    runbook.parent.mkdir(exist_ok=True)
    runbook.write_text("# Runbook for {{ cookiecutter.project_name }}\n")
    commit_all(template, "a new default and a new file")


def cruft(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("cruft"), *args], cwd=project, capture_output=True, text=True, check=False
    )


def test_the_project_records_its_answers_without_local_paths(
    project: Path, template: Path, tmp_path: Path
) -> None:
    recorded = json.loads((project / ".cruft.json").read_text())
    answers = recorded["context"]["cookiecutter"]
    assert answers["package_name"] == "my_service"
    assert recorded["template"] == answers["_template"] == str(template)
    others = {k: v for k, v in answers.items() if k != "_template"}
    assert str(tmp_path) not in json.dumps(others)
    assert "_output_dir" not in answers and "_repo_dir" not in answers


def test_a_conflicting_local_edit_is_reported_and_kept(project: Path, template: Path) -> None:
    settings = project / "src" / "my_service" / "settings.py"
    edit(settings, "Field(default=2.0,", "Field(default=5.0,")
    commit_all(project, "our own timeout")
    change_template(template, "3.0")
    updated = cruft(project, "update", "--skip-apply-ask")
    assert "with conflicts" in updated.stdout + updated.stderr
    text = settings.read_text()
    assert "<<<<<<<" in text and "Field(default=5.0," in text and "Field(default=3.0," in text
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True
    ).stdout
    assert "UU src/my_service/settings.py" in status
    assert os.path.exists(project / "docs" / "runbook.md")


def readme_command(project: Path, start: str) -> str:
    """The one line of the baked README's shell blocks that starts so."""
    lines = [line.strip() for line in (project / "README.md").read_text().splitlines()]
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, found
    return found[0]


def test_a_plain_cookiecutter_bake_starts_tracking_with_the_readme_command_and_no_answer_typed(
    template: Path, tmp_path: Path
) -> None:
    answers = ["project_name=Orders API", "auth=jwt", "include_realtime=false"]
    run([tool("cookiecutter"), "--no-input", str(template), *answers], tmp_path)
    project = tmp_path / "orders-api"
    no_link = cruft(project, "check")
    assert no_link.returncode != 0 and "Was unable to locate a `.cruft.json`" in no_link.stderr
    assert "Was unable to locate a `.cruft.json` state file" in (project / "README.md").read_text()

    link = readme_command(project, "uvx cruft link ")
    url = "https://github.com/YOUR_ORG/fastapi-service-template"  # baked from a local folder
    assert link.endswith(url)
    link = link.replace("uvx cruft", tool("cruft")).replace(url, str(template))
    run(["bash", "-c", link], project)
    recorded = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    answered = json.loads((project / ".cookiecutter.json").read_text())
    assert answered["auth"] == "jwt" and answered["include_realtime"] is False
    assert str(tmp_path) not in (project / ".cookiecutter.json").read_text()  # answers only
    assert {key: recorded[key] for key in answered} == answered
    run(["bash", "-c", readme_command(project, "git add .cruft.json")], project)

    assert cruft(project, "check").returncode == 0
    change_template(template, "2.5")
    assert cruft(project, "check").returncode != 0
    updated = cruft(project, "update", "--skip-apply-ask")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    settings = (project / "src" / "orders_api" / "settings.py").read_text()
    assert "Field(default=2.5," in settings
    assert "jwt_secret" in (project / "src" / "orders_api" / "auth_settings.py").read_text()
    assert (project / "docs" / "runbook.md").read_text() == "# Runbook for Orders API\n"
