"""The template repository itself: its CI covers every combination, its README every option,
and its workflow passes the offline checks."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .combinations import COMBINATIONS
from .conftest import TEMPLATE

WORKFLOW = TEMPLATE / ".github" / "workflows" / "template-ci.yml"


# An inline code span that is a shell command: optional VAR=value words, then a command we use.
INLINE_COMMAND = re.compile(
    r"`((?:[A-Z_]+=\S+ )*(?:uvx |sudo )?(?:cookiecutter|cruft|make|pip|pipx|uv|git|docker|"
    r"kubectl|python3?|cd|cp|curl|promtool|pre-commit|apt-get|wrk)\b[^`]*)`"
)
# <org>, <name>, <template-url>: words a reader must replace, and that a shell reads as
# redirections. A redirection proper ('< file', '2>&1') has no letter right after '<'.
ANGLE_PLACEHOLDER = re.compile(r"<[A-Za-z][\w./:-]*>")


def shell_commands(markdown: str) -> list[str]:
    """Every line of the ```bash blocks, and every inline code span that is a command."""
    commands, in_block = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_block = line.strip() in ("```bash", "```sh", "```shell")
        elif in_block:
            commands.append(line)
        else:
            commands += INLINE_COMMAND.findall(line)
    return commands


def commands_with_placeholders(markdown: str) -> list[str]:
    return [command for command in shell_commands(markdown) if ANGLE_PLACEHOLDER.search(command)]


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


def test_the_readme_has_no_angle_bracket_placeholder_in_a_shell_command() -> None:
    readme = (TEMPLATE / "README.md").read_text()
    assert len(shell_commands(readme)) > 10
    assert commands_with_placeholders(readme) == []


def test_the_use_it_command_bakes_from_a_local_clone_as_written(tmp_path: Path) -> None:
    """The README's cookiecutter line, run in a clone with every question answered by Enter."""
    use_it = (TEMPLATE / "README.md").read_text().split("## Use it", 1)[1]
    block = use_it.split("```bash\n", 1)[1].split("```", 1)[0]
    command = next(line for line in block.splitlines() if line.startswith("cookiecutter "))
    clone = tmp_path / "fastapi-service-template"
    ignored = shutil.ignore_patterns(".git", ".venv", ".cache", "build", "__pycache__", "node_modules")
    shutil.copytree(TEMPLATE, clone, ignore=ignored)
    result = subprocess.run(
        ["bash", "-c", command], cwd=clone, input="\n" * 20, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "my-service" / "src" / "my_service" / "main.py").is_file()
    # The printed next step works from where the user stands: the clone.
    assert "\n  cd ../my-service\n" in result.stdout, result.stdout


def test_the_readme_starts_with_the_demo_and_the_whole_suite() -> None:
    """A newcomer's first two commands: bake and serve the default service, run every test."""
    readme = (TEMPLATE / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.splitlines()] == [
        "make demo",
        "make test",
    ]


def test_the_workflow_matches_the_github_workflow_schema() -> None:
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    result = subprocess.run([*command, str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_in_the_workflow_even_pedantic() -> None:
    command = [tool("zizmor"), "--offline", "--persona=pedantic", str(WORKFLOW)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


PACKAGE = TEMPLATE / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}"
JINJA_BRANCH = re.compile(r"\{%-? *(if|elif)\b")
# The most `{% if %}`/`{% elif %}` blocks a file under src/ may hold: an option is a whole file
# the post-gen hook keeps or removes, so these only come down. A file not listed may hold none.
BRANCH_CEILINGS = {
    "__main__.py": 1,
    "api/articles.py": 0,  # the router a team copies: the same code whatever the options
    "api/me.py": 1,
    "db_settings.py": 3,  # PostgreSQL or SQLite: the URL's default and what production refuses
    "main.py": 9,  # the composition root: the routers it includes
    "messaging_settings.py": 1,  # the outbox relay's, with a database
    "messaging/__init__.py": 1,
    "messaging/handlers.py": 3,
    "migrations/versions/0002_create_outbox.py": 2,
    "resilience/cache.py": 1,
    "security/principal.py": 2,
    "security/tokens.py": 3,
    "settings.py": 6,  # the imports of the feature's settings, the rate limits' storage
    "worker.py": 2,
}


def test_no_python_file_holds_more_jinja_branches_than_its_ceiling() -> None:
    counts = {
        path.relative_to(PACKAGE).as_posix(): len(JINJA_BRANCH.findall(path.read_text()))
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    over = {
        name: f"{count} > {BRANCH_CEILINGS.get(name, 0)}"
        for name, count in counts.items()
        if count > BRANCH_CEILINGS.get(name, 0)
    }
    assert not over, f"Jinja if/elif blocks past the ceiling (make the option a file): {over}"
    assert sum(counts.values()) <= 50, f"{sum(counts.values())} Jinja if/elif blocks under src/"


def test_every_source_file_fits_three_hundred_lines() -> None:
    """A file a reader takes in at once: the service's Python under src/, template lines
    included (a bake has fewer)."""
    long = {
        path.relative_to(PACKAGE).as_posix(): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > 300
    }
    assert not long, f"split these by responsibility: {long}"


def test_make_test_installs_its_servers_or_names_what_to_install(tmp_path: Path) -> None:
    """Where nothing can install them (no apt-get on PATH), one line names what is missing and
    the packages to install; with everything present it does nothing."""
    bash = tmp_path / "bash"
    bash.symlink_to(shutil.which("bash") or "/bin/bash")
    script = str(TEMPLATE / "tests" / "install-servers")
    bare = subprocess.run(
        [str(bash), script], capture_output=True, text=True, env={"PATH": str(tmp_path)}
    )
    assert bare.returncode == 1
    assert bare.stdout == "" and bare.stderr.count("\n") == 1, bare.stderr
    assert bare.stderr.startswith("ERROR: the self-tests need redis-server ")
    assert "apt-get install redis-server nginx prometheus chromium openssl postgresql" in bare.stderr
    assert "make test again" in bare.stderr
    present = subprocess.run([script], capture_output=True, text=True)  # this suite's servers
    assert present.returncode == 0 and present.stdout == present.stderr == "", present
    assert "\ntest: $(BIN)/cookiecutter servers " in (TEMPLATE / "Makefile").read_text()
