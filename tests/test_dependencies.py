"""Honest dependency ranges: a baked project passes its own `make check` with every direct
dependency at its lower bound (`uv lock --resolution lowest-direct`), not only at the newest
versions (`test_bake.py::test_make_check_passes`).

One bake runs it, the one with the most optional dependencies: jwt (pwdlib, PyJWT,
python-multipart), redis, PostgreSQL (SQLAlchemy, asyncpg, aiosqlite, Alembic), RabbitMQ
(aio-pika) and realtime (websockets). The others' dependencies are a subset of its, but for
mangum: Lambda is refused with RabbitMQ, so mangum's bound is checked in the first Lambda bake,
by that bake's Lambda handler tests and mypy only (a second whole `make check` costs minutes)."""

import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from .combinations import COMBINATIONS, DEFAULTS
from .conftest import Baked, run

# Also set for `make check`'s `uv run`s: under the default resolution they would re-lock.
LOWEST = {"UV_RESOLUTION": "lowest-direct"}


def has_the_most_optional_dependencies(context: dict[str, Any]) -> bool:
    context = {**DEFAULTS, **context}
    return (
        context["auth"] == "jwt"
        and context["rate_limit_storage"] == "redis"
        and context["database"] == "postgresql"
        and context["messaging"] == "rabbitmq"
        and context["include_realtime"] is True
    )


def bake_of(name: str, cookies_session: Any) -> Baked:
    """A bake of its own: these checks are a group of their own on the test workers (the
    combination's own group is long enough), run with the combination's CI job."""
    only = os.environ.get("COMBINATION")
    if only and only != name:
        pytest.skip(f"in {name}'s job")
    result = cookies_session.bake(extra_context=COMBINATIONS[name])
    assert result.exit_code == 0, result.exception
    return Baked(Path(result.project_path), result.context)


def direct_requirements(project: Path) -> list[Requirement]:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    specs = pyproject["project"]["dependencies"] + pyproject["dependency-groups"]["dev"]
    return [Requirement(spec) for spec in specs]


def lower_bound(requirement: Requirement) -> Version:
    [bound] = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return bound


def locked_versions(project: Path) -> dict[str, Version]:
    lock = tomllib.loads((project / "uv.lock").read_text(encoding="utf-8"))
    assert lock["options"]["resolution-mode"] == "lowest-direct"
    return {
        re.sub(r"[-_.]+", "-", p["name"]).lower(): Version(p["version"])
        for p in lock["package"]
        if "version" in p
    }


def locked_at_the_lower_bounds(baked: Baked, tmp_path: Path) -> Path:
    """A copy of the bake, locked and synced at its direct dependencies' lower bounds."""
    project = tmp_path / baked.path.name
    shutil.copytree(
        baked.path,
        project,
        # The bake's own lock (newest versions) would be kept as the resolver's preferences.
        ignore=shutil.ignore_patterns(
            ".venv", "uv.lock", ".mypy_cache", ".pytest_cache", "__pycache__", ".coverage"
        ),
    )
    run(["uv", "lock", "--resolution", "lowest-direct"], project, env=LOWEST)

    # Each direct dependency is locked at its bound (to the bound's precision: `>=9.1` may be
    # 9.1.2 when there is no 9.1.0): a bound that another dependency overrides is never tested.
    locked = locked_versions(project)
    above = []
    for requirement in direct_requirements(project):
        bound = lower_bound(requirement)
        version = locked[re.sub(r"[-_.]+", "-", requirement.name).lower()]
        if version.release[: len(bound.release)] != bound.release:
            above.append(f"{requirement.name}: >={bound} but locked at {version}")
    assert not above, "lower bounds that the lock does not reach:\n" + "\n".join(above)

    run(["uv", "sync", "--locked"], project, env=LOWEST)
    return project


@pytest.mark.bake
@pytest.mark.xdist_group("lower-bounds")
def test_the_lower_bounds_pass_make_check(cookies_session: Any, tmp_path: Path) -> None:
    [name] = [n for n, c in COMBINATIONS.items() if has_the_most_optional_dependencies(c)]
    project = locked_at_the_lower_bounds(bake_of(name, cookies_session), tmp_path)
    result = run(["make", "check"], project, env=LOWEST)
    assert "Required test coverage of 90" in result.stdout


@pytest.mark.bake
@pytest.mark.xdist_group("mangum-lower-bound")
def test_mangum_at_its_lower_bound_passes_the_lambda_checks(
    cookies_session: Any, tmp_path: Path
) -> None:
    name = next(n for n, c in COMBINATIONS.items() if c.get("aws_lambda"))
    baked = bake_of(name, cookies_session)
    project = locked_at_the_lower_bounds(baked, tmp_path)
    run(["uv", "run", "pytest", "-q", "tests/test_lambda_handler.py"], project, env=LOWEST)
    run(["uv", "run", "mypy", f"src/{baked.package}/lambda_handler.py"], project, env=LOWEST)
