"""Alembic's entry point: the service's settings give the URL, its models the target schema.

Async, like the service: the same driver runs the migrations.
"""

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.package_name }}.db import UtcDateTime, database_url
from {{ cookiecutter.package_name }}.models import discover_models, refuse_empty_migration
from {{ cookiecutter.package_name }}.settings import get_settings

# Every model of the service's packages (domain/...), found by models.py: no import to add here.
target_metadata = discover_models()
config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def render_item(kind: str, item: Any, autogen: AutogenContext) -> str | Literal[False]:
    """The service's own column types written as the SQLAlchemy types they store, so that a
    migration never imports the service's code."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        compare_type=True,
        render_item=render_item,
        process_revision_directives=refuse_empty_migration,  # `make migration` finding nothing
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(database_url(get_settings()))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=database_url(get_settings()), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
