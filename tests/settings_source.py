"""The generated Settings class read from its source (importing it would need the project
installed): its fields, those of the groups it derives from, and the variables' prefix."""

import ast
from pathlib import Path


def classes(package: Path) -> dict[str, list[ast.ClassDef]]:
    """Every class of the package by name (a name may be defined in several modules)."""
    found: dict[str, list[ast.ClassDef]] = {}
    for path in package.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(node)
    return found


def fields(name: str, known: dict[str, list[ast.ClassDef]]) -> set[str]:
    """The fields of class `name` and of every class of the package it derives from."""
    [node] = known[name]  # one class of that name, or the bases could not be told apart
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


def settings_fields(package: Path) -> set[str]:
    return fields("Settings", classes(package))
