"""The real upgrade path: a project baked from the previous release with `cruft create`, changed
by its team, then `cruft update` to this working tree; and the CHANGELOG's notes for it."""

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from .combinations import first_with_messaging
from .conftest import TEMPLATE, run
from .resource import add_a_resource, refused_without_a_model_change, serves_invoices
from .served import start_service
from .test_hooks import post_gen
from .test_template import tool
from .test_update import IGNORED

# One worker takes them all (they share a bake of the previous release), early: they are long.
pytestmark = pytest.mark.xdist_group("upgrade")

# The previous release, by its full commit: tags may be missing from a clone, commits are not.
PREVIOUS_RELEASE = "219162236efcce46331334db0a80b8297125d6d8"  # v0.2.0
IDENTITY = {
    f"GIT_{role}_{field}": value
    for role in ("AUTHOR", "COMMITTER")
    for field, value in (("NAME", "Template Tests"), ("EMAIL", "tests@example.com"))
}
HELLO = Path("src/my_service/api/hello.py")
HELLO_SOURCE = '''"""Our own route, added after the bake."""

from fastapi import APIRouter

router = APIRouter()


@router.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
'''
# Our router in main.py as the previous release composes the app, and as this one does.
IMPORT_OLD = "from . import __version__\nfrom .api import hello\n"
INCLUDE_OLD = "    app.include_router(hello.router)\n    include_api(app)"
IMPORT_NEW = "from . import __version__, health\nfrom .api import hello\n"
INCLUDE_NEW = "    app.include_router(health.router)\n    app.include_router(hello.router)\n"
HELLO_LIMITED = (
    "\nrouter = APIRouter()",
    "\nfrom ..security.rate_limit import RateLimitedRoute\n\n"
    "router = APIRouter(route_class=RateLimitedRoute)",
)
OUR_SECTION = "\n## Our team\n\nThe billing team owns this service.\n"
OUR_ENV_LINE = "# Our team: the ledger the billing jobs read (not a service setting)\n"


def only_in(combination: str) -> pytest.MarkDecorator:
    """A whole run takes the test; a CI job of one COMBINATION only when it is this one."""
    only = os.environ.get("COMBINATION")
    return pytest.mark.skipif(bool(only) and only != combination, reason=f"in {combination}'s job")


def git(repo: Path, *args: str) -> str:
    return run(["git", *args], repo, env=IDENTITY).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", message)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository, its history included, whose last commit is the working tree
    as it is (cruft updates to a commit)."""
    known = subprocess.run(
        ["git", "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], cwd=TEMPLATE, check=False
    )
    if known.returncode != 0:
        pytest.fail(
            f"This clone lacks commit {PREVIOUS_RELEASE} (v0.2.0), the release the upgrade "
            "test bakes: a shallow clone? Run git fetch --unshallow (CI: actions/checkout "
            "with fetch-depth: 0).",
            pytrace=False,
        )
    clone = tmp_path_factory.mktemp("upgrade") / "template"
    run(["git", "clone", "--quiet", "--no-checkout", str(TEMPLATE), str(clone)], TEMPLATE)
    shutil.copytree(TEMPLATE, clone, ignore=IGNORED, dirs_exist_ok=True)
    git(clone, "add", "--all")  # a clean checkout (CI's) adds nothing: the commit is empty
    git(clone, "commit", "--quiet", "--allow-empty", "--message", "the working tree")
    return clone


def bake_previous_release(template: Path, where: Path) -> Path:
    cruft = [tool("cruft"), "create", "--no-input", "--checkout", PREVIOUS_RELEASE]
    run([*cruft, str(template)], where)
    project = where / "my-service"
    git(project, "init", "--quiet", "--initial-branch=main")
    commit_all(project, "baked from the previous release")
    return project


def cruft_update(project: Path, *args: str) -> str:
    updated = run([tool("cruft"), "update", "--skip-apply-ask", *args], project, env=IDENTITY)
    return updated.stdout + updated.stderr


def conflicted(project: Path) -> list[str]:
    return git(project, "diff", "--name-only", "--diff-filter=U").split()


def recorded(project: Path) -> dict[str, object]:
    answers: dict[str, object] = json.loads((project / ".cruft.json").read_text())
    return answers["context"]["cookiecutter"]  # type: ignore[index]


def add_our_changes(project: Path) -> None:
    """What a team adds: a router included in main.py, a README section, an .env.example line."""
    (project / HELLO).write_text(HELLO_SOURCE)
    main = project / "src" / "my_service" / "main.py"
    text = main.read_text().replace("from . import __version__\n", IMPORT_OLD)
    main.write_text(text.replace("    include_api(app)", INCLUDE_OLD))
    with (project / "README.md").open("a") as readme:
        readme.write(OUR_SECTION)
    with (project / ".env.example").open("a") as example:
        example.write(OUR_ENV_LINE)


def resolve_as_a_team_would(project: Path) -> None:
    """README: both sides kept. main.py: the template's, our router included in it again."""
    readme = project / "README.md"
    markers = re.compile(r"^(<<<<<<< .*|=======|>>>>>>> .*)\n", re.MULTILINE)
    readme.write_text(markers.sub("", readme.read_text()))
    main = Path("src/my_service/main.py")
    git(project, "checkout", "--theirs", str(main))
    text = (project / main).read_text()
    assert "    app.include_router(health.router)\n" in text, text
    text = text.replace("from . import __version__, health\n", IMPORT_NEW)
    text = text.replace("    app.include_router(health.router)\n", INCLUDE_NEW)
    (project / main).write_text(text)
    # The updated tests fail for a router without the default limit's route class: ours gets it.
    (project / HELLO).write_text(HELLO_SOURCE.replace(*HELLO_LIMITED))
    git(project, "add", "README.md", str(main), str(HELLO))


def tracked(project: Path) -> dict[str, str]:
    names = git(project, "ls-files", "-z").split("\0")
    return {name: (project / name).read_text(errors="replace") for name in names if name}


def differences_from_a_new_bake(project: Path, template: Path, where: Path) -> list[str]:
    """The files of the updated project that a new default bake of this tree does not have as
    they are, once the team's own changes are taken out again. The README is left out: both
    sides of its conflict were kept."""
    bake = [tool("cookiecutter"), "--no-input", "--output-dir", str(where / "new"), str(template)]
    run(bake, where)
    new = tracked(where / "new" / "my-service")
    updated = tracked(project)
    updated.pop(".cruft.json")  # cruft's record: a plain bake has none
    updated.pop(str(HELLO))
    main = "src/my_service/main.py"
    updated[main] = updated[main].replace(IMPORT_NEW, "from . import __version__, health\n")
    updated[main] = updated[main].replace(INCLUDE_NEW, "    app.include_router(health.router)\n")
    updated[".env.example"] = updated[".env.example"].replace(OUR_ENV_LINE, "")
    names = (set(new) | set(updated)) - {"README.md"}
    return sorted(name for name in names if new.get(name) != updated.get(name))


@only_in("default")
def test_a_bake_of_the_previous_release_updates_keeping_our_changes_and_still_passes(
    template: Path, tmp_path: Path
) -> None:
    project = bake_previous_release(template, tmp_path)
    add_our_changes(project)
    commit_all(project, "our route, a README section, an .env.example line")
    behind = subprocess.run([tool("cruft"), "check"], cwd=project, capture_output=True, text=True)
    assert behind.returncode != 0 and "out of date" in behind.stdout, behind.stdout

    output = cruft_update(project)
    notice = post_gen.new_options_notice({"database": "postgresql", "messaging": "none"})
    assert notice in output, output
    assert "--variables-to-update '{\"database\": \"none\"}'" in notice
    # Only what both changed conflicts: the README's end and main.py's composition.
    assert conflicted(project) == ["README.md", "src/my_service/main.py"], output
    assert (project / HELLO).read_text() == HELLO_SOURCE
    assert OUR_SECTION.strip() in (project / "README.md").read_text()
    example = (project / ".env.example").read_text()
    assert example.endswith(OUR_ENV_LINE) and "<<<<<<<" not in example
    assert "MY_SERVICE_DATABASE_URL" in example  # the template's changes applied around ours
    assert recorded(project)["database"] == "postgresql"
    assert recorded(project)["messaging"] == "none"

    resolve_as_a_team_would(project)
    assert conflicted(project) == []
    run([tool("cruft"), "check"], project)  # up to date
    # Nothing of 0.2.0 left behind, nothing of this tree missing: so the `make check` below (the
    # README's last step) is also the default bake's own, which test_bake.py leaves to it.
    assert differences_from_a_new_bake(project, template, tmp_path) == []
    run(["make", "install"], project)
    # Then the team adds a resource as the updated README says: no model change is refused,
    # the README's steps are followed as written, `make check` last.
    refused = refused_without_a_model_change(project, "my_service")
    assert refused.count("no model changes found") == 1, refused
    where = "src/my_service/domain/"
    assert f"FAILED: no model changes found: is the model's module under {where}?" in refused
    add_a_resource(project, "my_service")
    serves_invoices(project, "my_service")
    service = start_service(project, "my_service")
    try:
        assert httpx.get(f"{service.url}/hello").json() == {"hello": "world"}
        assert httpx.get(f"{service.url}/health/live").status_code == 200
    finally:
        service.stop()


@only_in(first_with_messaging("postgresql") or "default")
def test_a_bake_of_the_previous_release_updates_into_a_database_and_messaging(
    template: Path, tmp_path: Path
) -> None:
    project = bake_previous_release(template, tmp_path)
    chosen = {"database": "postgresql", "messaging": "rabbitmq"}
    output = cruft_update(project, "--variables-to-update", json.dumps(chosen))
    assert post_gen.new_options_notice(chosen) in output, output
    assert "conflict" not in output.lower() and conflicted(project) == [], output
    package = project / "src" / "my_service"
    for path in ("messaging/outbox.py", "worker.py", "db.py", "migrations/env.py"):
        assert (package / path).is_file(), path
    assert not (package / "messaging" / "publisher.py").exists()  # the direct publish's
    assert {key: recorded(project)[key] for key in chosen} == chosen
    # make check ran on the default update above; here the part only a database bake has.
    run(["make", "install"], project)
    run(["make", "migrations-check"], project)


# `## 0.2.0 — 2026-11-28, commit 2191622`
RELEASE = re.compile(r"^## (\d+\.\d+\.\d+) — [\d-]{10}, commit ([0-9a-f]{7,40})$", re.MULTILINE)


def sections(changelog: str) -> dict[str, str]:
    """Each `## ` heading's text, by the heading."""
    parts = re.split(r"^## (.*)$", changelog, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_the_changelog_says_how_to_upgrade_to_each_release_and_to_what_is_unreleased() -> None:
    changelog = (TEMPLATE / "CHANGELOG.md").read_text()
    releases = RELEASE.findall(changelog)
    assert ("0.2.0", PREVIOUS_RELEASE[:7]) in releases, releases
    by_heading = sections(changelog)
    for heading, text in by_heading.items():
        assert "### Upgrading" in text, f"CHANGELOG.md: '## {heading}' has no Upgrading part"
    for version, commit in releases:
        known = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=TEMPLATE)
        assert known.returncode == 0, f"{version}'s commit {commit} is not in this repository"
    # Each option new since the previous release, and how to keep its behaviour when the new
    # default changes it.
    upgrading = by_heading["Unreleased"].split("### Upgrading", 1)[-1].split("\n\n")[1]
    upgrading = " ".join(upgrading.split())
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    for option, (_, before) in post_gen.NEW_OPTIONS.items():
        assert f"`{option}` (`{defaults[option]}`" in upgrading, option
        keep = "--variables-to-update " + shlex.quote(json.dumps({option: before}))
        assert defaults[option] == before or keep in upgrading, option
