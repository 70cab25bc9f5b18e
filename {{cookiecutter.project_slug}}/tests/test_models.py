"""Models are found wherever they sit under domain/, and `make migration` finding no change
refuses to write an empty migration."""

import sys
from argparse import Namespace
from pathlib import Path
from typing import cast

import pytest
from alembic import command
from alembic.config import Config
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import create_engine, inspect

from {{ cookiecutter.package_name }}.models import (
    WHERE,
    discover_models,
    import_modules,
    refuse_empty_migration,
)

from .test_database import PROJECT, alembic, upgrade

VERSIONS = PROJECT / "src" / "{{ cookiecutter.package_name }}" / "migrations" / "versions"
MODEL = """from sqlalchemy import Column, Integer, MetaData, Table

metadata = MetaData()
{name} = Table("{name}", metadata, Column("id", Integer, primary_key=True))
"""


def test_every_module_of_a_package_is_imported_its_subpackages_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "found_models"
    (package / "billing").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "invoice_rows.py").write_text(MODEL.format(name="invoices"))
    (package / "billing" / "__init__.py").write_text("")
    (package / "billing" / "credit_rows.py").write_text(MODEL.format(name="credits"))
    monkeypatch.syspath_prepend(str(tmp_path))
    names = [f"found_models.{name}" for name in ("billing", "billing.credit_rows", "invoice_rows")]
    for name in ["found_models", *names]:
        monkeypatch.delitem(sys.modules, name, raising=False)  # removed again after the test

    assert sorted(import_modules("found_models")) == names
    assert "invoices" in sys.modules["found_models.invoice_rows"].metadata.tables
    assert "credits" in sys.modules["found_models.billing.credit_rows"].metadata.tables


def test_the_models_found_are_the_tables_the_migrations_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the suite's tables are made from (conftest.py) is what Alembic compares."""
    database = tmp_path / "migrated.db"
    alembic(f"sqlite+aiosqlite:///{database}", monkeypatch, upgrade)
    engine = create_engine(f"sqlite:///{database}")
    try:
        migrated = set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert migrated == set(discover_models().tables)


def autogenerate(config: Config) -> None:
    """`alembic revision --autogenerate`, as `make migration` runs it, on a migrated database."""
    command.upgrade(config, "head")
    config.cmd_opts = Namespace(autogenerate=True)
    command.revision(config, message="nothing changed", autogenerate=True)


def test_make_migration_without_a_model_change_writes_nothing_and_says_where_models_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = set(VERSIONS.iterdir())
    try:
        with pytest.raises(CommandError) as refused:
            alembic(f"sqlite+aiosqlite:///{tmp_path / 'head.db'}", monkeypatch, autogenerate)
    finally:
        written = set(VERSIONS.iterdir()) - before
        for path in written:  # the source tree as it was, even when the test fails
            path.unlink()
    assert str(refused.value) == f"no model changes found: is the model's module under {WHERE}?"
    assert written == set()


class Context:
    """What the hook reads of Alembic's MigrationContext: the command line's options."""

    def __init__(self, autogenerate: bool) -> None:
        self.config = Config(cmd_opts=Namespace(autogenerate=autogenerate))


def script(*operations: ops.MigrateOperation) -> ops.MigrationScript:
    return ops.MigrationScript("0099", ops.UpgradeOps(list(operations)), ops.DowngradeOps([]))


def test_a_model_change_is_written() -> None:
    directives = [script(ops.CreateTableOp("invoices", []))]
    refuse_empty_migration(cast(MigrationContext, Context(autogenerate=True)), "head", directives)
    assert len(directives) == 1


def test_a_migration_written_by_hand_may_start_empty() -> None:
    directives = [script()]
    refuse_empty_migration(cast(MigrationContext, Context(autogenerate=False)), "head", directives)
    assert len(directives) == 1
