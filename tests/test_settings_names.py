"""The environment variable names are the baked service's public interface: in every combination,
the bake's .env.example and the fields its Settings class reads name exactly the variables of
the fixture (tests/fixtures/env_example/<combination>.env.example, each a bake's .env.example
from before the settings were split per feature, plus each setting added since, on purpose),
with the same values: a renamed variable or a changed default fails here.

Cheap: cookiecutter only, no install; the Settings class is read from its source.
"""

from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from .combinations import COMBINATIONS
from .conftest import TEMPLATE
from .settings_source import env_prefix, settings_fields

FIXTURES = Path(__file__).parent / "fixtures" / "env_example"


def assignments(env_file: Path) -> dict[str, str]:
    """Each NAME=value line of an .env file."""
    lines = [line for line in env_file.read_text().splitlines() if line and line[0] != "#"]
    return dict(line.split("=", 1) for line in lines)


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
    read = {prefix + field.upper() for field in settings_fields(package)}
    assert sorted(read) == sorted(expected)
