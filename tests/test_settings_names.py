"""The environment variable names are the baked service's public interface: in every combination,
the bake's .env.example and the fields its Settings class reads name exactly the variables of
the fixture (tests/fixtures/env_example/<combination>.env.example, each a bake's .env.example
from before the settings were split per feature), with the same values.

Cheap: cookiecutter only, no install; the Settings class is read from its source.
"""

import ast
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from .combinations import COMBINATIONS
from .conftest import TEMPLATE

FIXTURES = Path(__file__).parent / "fixtures" / "env_example"


def assignments(env_file: Path) -> dict[str, str]:
    """Each NAME=value line of an .env file."""
    lines = [line for line in env_file.read_text().splitlines() if line and line[0] != "#"]
    return dict(line.split("=", 1) for line in lines)


def classes(package: Path) -> dict[str, ast.ClassDef]:
    found = {}
    for path in package.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                assert node.name not in found, f"two classes named {node.name} in {package}"
                found[node.name] = node
    return found


def fields(name: str, known: dict[str, ast.ClassDef]) -> set[str]:
    """The fields of class `name` and of every class of the package it derives from."""
    node = known[name]
    found = {
        statement.target.id
        for statement in node.body
        if isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and statement.target.id != "model_config"
        and not ast.unparse(statement.annotation).startswith("ClassVar")
    }
    for statement in ast.walk(node):  # an alias would change the variable's name
        if isinstance(statement, ast.keyword):
            assert statement.arg not in ("alias", "validation_alias"), f"{name}: an alias"
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in known:
            found |= fields(base.id, known)
    return found


def env_prefix(package: Path) -> str:
    """ENV_PREFIX, a string literal wherever the package defines it."""
    for path in package.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ENV_PREFIX":
                assert isinstance(node.value, ast.Constant), "ENV_PREFIX is not a literal"
                return str(node.value.value)
    raise AssertionError(f"no ENV_PREFIX in {package}")


@pytest.mark.parametrize(("name", "context"), COMBINATIONS.items(), ids=list(COMBINATIONS))
def test_every_variable_name_and_default_is_unchanged(
    name: str, context: dict[str, object], tmp_path: Path
) -> None:
    project = Path(
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path), extra_context=context)
    )
    expected = assignments(FIXTURES / f"{name}.env.example")
    # The bake's own tests check that .env.example lists every field with its default.
    assert assignments(project / ".env.example") == expected
    package = next(path.parent for path in (project / "src").glob("*/settings.py"))
    prefix = env_prefix(package)
    read = {prefix + field.upper() for field in fields("Settings", classes(package))}
    assert sorted(read) == sorted(expected)
