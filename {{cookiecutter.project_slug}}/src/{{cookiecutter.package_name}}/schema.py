"""The schema this release needs: the head of the Alembic migrations it ships with (migrations/,
inside the package, so the service has them wherever it is installed).

The database may be at that head, or past it (a newer release migrated first: expand/contract
keeps its schema fit for this code), but not behind it. db.py asks on every readiness run and
whenever a statement names a table or column the database lacks: once the migrations have run,
the service is ready again by itself.
"""

from collections.abc import Sequence
from functools import cache

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from .health import NotReady

FIX = (
    "Run the migrations: `make migrate` in development; where deployed, `alembic upgrade head` "
    "in the service's image (compose's `migrate` service, the Kubernetes migrate Job)."
)


class SchemaBehind(NotReady):
    """The database lacks migrations this release needs: a 503 naming them and the fix."""


@cache
def migrations() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", f"{__package__}:migrations")
    config.set_main_option("path_separator", "os")
    return ScriptDirectory.from_config(config)


def check_migrations() -> None:
    """Reads the migrations once, at start-up: a package without them fails there, loudly."""
    migrations().get_heads()


def named(revisions: Sequence[str]) -> str:
    """Each revision with its message: "0003 (add prices)"."""
    scripts = (migrations().get_revision(revision) for revision in revisions)
    return ", ".join(f"{script.revision} ({script.doc})" for script in scripts if script)


def missing_migrations(connection: Connection) -> str | None:
    """What the database lacks of this release's schema, and the fix; None when nothing.

    Run through `AsyncConnection.run_sync`."""
    script = migrations()
    needed = script.get_heads()
    current = MigrationContext.configure(connection).get_current_heads()
    known = {revision.revision for revision in script.walk_revisions()}
    if set(needed) <= set(current) or not set(current) <= known:
        return None  # at the head, or at a revision only a newer release knows
    at = f"is at revision {named(current)}" if current else "has no migrations applied"
    return f"The database {at}; this release needs revision {named(needed)}. {FIX}"
