"""Shared set-up for the template's self-tests: one uv cache for every bake, every pyenv Python
visible to uv, and helpers to run commands in a baked project."""

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .combinations import (
    API_KEY_BAKE,
    COMBINATIONS,
    DEFAULTS,
    JWT_BAKE,
    LAMBDA_BAKE,
    combination_params,
    first_with,
)
from .rabbitmq import RabbitMQ, rabbitmq  # noqa: F401 (a fixture)
from .redis_server import redis  # noqa: F401 (a fixture)

TEMPLATE = Path(__file__).resolve().parents[1]
METRICS_TOKEN = "a-metrics-token-of-the-template-tests-0123"
# Outside development auth=jwt needs a user: the argon2 hash of a password nobody uses.
OPS_HASH = (
    "$argon2id$v=19$m=1024,t=1,p=1$Xkock/KV/TBFmP9zg3jq4Q$QxZlDhs2Rjx7jEqULQCiKJFn1SIA64vh9f17Pi5LBGY"
)


def pytest_configure(config: pytest.Config) -> None:
    # One uv cache for all bakes (and all runs): installs after the first are seconds.
    os.environ.setdefault("UV_CACHE_DIR", str(TEMPLATE / ".cache" / "uv"))
    # uv and the other tools installed beside this interpreter (requirements-dev.txt).
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    os.environ.pop("VIRTUAL_ENV", None)  # uv must use each baked project's own .venv
    # pyenv shims answer only for the active versions: make every installed one visible to uv.
    if shutil.which("pyenv") and "PYENV_VERSION" not in os.environ:
        versions = subprocess.run(
            ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False
        ).stdout.split()
        installed = sorted((v for v in versions if v[:1].isdigit()), reverse=True)
        if installed:
            os.environ["PYENV_VERSION"] = ":".join(installed)


# The order the two test workers take the work in (`make test`: `--dist loadgroup
# --no-loadscope-reorder`), each unit a group of tests kept on one worker: the longest first,
# so that the workers end together; the rest (the hooks' quick tests, one unit each) last.
LONGEST_FIRST = [
    "py3.11-long_quoted_names-all_options_but_lambda",
    "default",
    JWT_BAKE,
    "upgrade",
    "lower-bounds",
    LAMBDA_BAKE,
    API_KEY_BAKE,
    "mangum-lower-bound",
]


def work_unit(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("xdist_group")
    return str(marker.args[0]) if marker and marker.args else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        unit = work_unit(item)
        return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each unit's tests keep their order


def bake_module(baked: "Baked", relative: str) -> ModuleType:
    """A module of the bake's own (its tests' fake upstream, its Sentry sink), loaded from its
    file: the template's tests drive the same helpers the bake's tests use."""
    path = baked.path / relative
    name = f"{path.stem}_{id(baked)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def once_in(request: pytest.FixtureRequest, combination: str, why: str) -> None:
    """Skip unless the test's bake is `combination`: for a check no option changes."""
    if request.node.callspec.params["baked"] != COMBINATIONS[combination]:
        pytest.skip(f"runs once, in {combination}: {why}")


def once_per(request: pytest.FixtureRequest, option: str, why: str) -> None:
    """Skip unless the test's bake is the first with its value of `option`: for a check only
    that option changes."""
    value = request.node.callspec.params["baked"].get(option, DEFAULTS[option])
    if request.node.callspec.params["baked"] != COMBINATIONS[first_with(option, value)]:
        pytest.skip(f"runs once per {option} value, in {first_with(option, value)}: {why}")


def run(
    command: list[str], cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in a baked project; fail the test with its output when it fails.

    `env`: variables set on top of this process's environment."""
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env} if env else None,
    )
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` exited {result.returncode} in {cwd}:\n"
            f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result


@dataclass
class Baked:
    path: Path
    context: dict[str, Any]

    @property
    def package(self) -> str:
        return str(self.context["package_name"])

    def production_secrets(self) -> dict[str, str]:
        """What the bake refuses to start without outside development (the metrics token, its
        auth secret), as the environment variables a deployment's secret store would set."""
        prefix = self.package.upper()
        secrets = {f"{prefix}_METRICS_TOKEN": METRICS_TOKEN}
        if self.context["database"] == "postgresql":
            # Nothing listens on port 1: the service starts; its readiness says the database is
            # down (tests/test_database.py serves from a real PostgreSQL).
            secrets[f"{prefix}_DATABASE_URL"] = "postgresql+asyncpg://app:secret@127.0.0.1:1/db"
        if self.context["messaging"] == "rabbitmq":
            # Refused outside development: RabbitMQ's guest. Nothing listens on port 1 (the
            # messaging self-tests serve with a real RabbitMQ).
            secrets[f"{prefix}_BROKER_URL"] = "amqp://app:secret@127.0.0.1:1/"
        if self.context["auth"] == "api_key":
            digest = hashlib.sha256(b"an-api-key-of-the-template-tests").hexdigest()
            secrets[f"{prefix}_API_KEY_DIGESTS"] = f"ops:{digest}"
        elif self.context["auth"] == "jwt":
            secrets[f"{prefix}_JWT_SECRET"] = "a-jwt-secret-of-the-template-tests-0123456789"
            secrets[f"{prefix}_JWT_USERS"] = json.dumps({"ops": {"password_hash": OPS_HASH}})
        return secrets

    def text_files(self) -> list[Path]:
        """The project's files, not what its .gitignore keeps out (venvs, caches, the SQLite
        file a development start writes)."""
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=self.path, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return [self.path / name for name in listed.split("\0") if name]


@pytest.fixture(scope="session", params=combination_params())
def baked(request: pytest.FixtureRequest, cookies_session: Any) -> Baked:
    result = cookies_session.bake(extra_context=request.param)
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    return Baked(Path(result.project_path), result.context)


@pytest.fixture(scope="session")
def installed(baked: Baked) -> Baked:
    run(["make", "install"], baked.path)
    if baked.context["database"] != "none":
        # As `make run` does: the services started in development find their tables.
        run(["make", "migrate"], baked.path)
    return baked


@dataclass
class Publisher:
    """A caller allowed to publish realtime messages: the settings (environment variables) that
    let it in, the headers a program sends, the subprotocols a browser offers instead."""

    settings: dict[str, str]
    headers: dict[str, str]
    protocols: list[str]


JWT_SECRET = "a-jwt-secret-of-the-template-tests-0123456789"


def issue_token(installed: Baked, subject: str, scope: str) -> str:
    """A token for `subject` with `scope`, signed by the bake's own TokenAuthority with
    JWT_SECRET (the service under test gets the same secret)."""
    issue = (
        f"from {installed.package}.security.tokens import TokenAuthority as T; "
        f"print(T({JWT_SECRET!r}, {installed.context['project_slug']!r}, 3600)"
        f".issue({subject!r}, [{scope!r}]))"
    )
    python = str(installed.path / ".venv" / "bin" / "python")
    return run([python, "-c", issue], installed.path).stdout.strip()


@pytest.fixture(scope="session")
def publisher(installed: Baked) -> Publisher:
    prefix = installed.package.upper()
    if installed.context["auth"] == "api_key":
        key = "a-realtime-key-of-the-template-tests"
        digest = hashlib.sha256(key.encode()).hexdigest()
        settings = {f"{prefix}_API_KEY_DIGESTS": f"publisher:{digest}"}
        return Publisher(settings, {"X-API-Key": key}, ["api-key", key])
    if installed.context["auth"] == "jwt":
        token = issue_token(installed, "publisher", "realtime:write")
        settings = {f"{prefix}_JWT_SECRET": JWT_SECRET}
        return Publisher(settings, {"Authorization": f"Bearer {token}"}, ["bearer", token])
    return Publisher({}, {}, [])


@pytest.fixture(scope="session")
def broker(request: pytest.FixtureRequest, installed: Baked) -> dict[str, str]:
    """The settings that let a served bake write articles: with messaging=rabbitmq and no
    database, a write needs its broker up (else a 503), so the private RabbitMQ's URL."""
    if installed.context["messaging"] != "rabbitmq" or installed.context["database"] != "none":
        return {}
    node: RabbitMQ = request.getfixturevalue("rabbitmq")
    return {f"{installed.package.upper()}_BROKER_URL": node.url}
