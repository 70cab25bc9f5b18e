"""A private PostgreSQL cluster on a free 127.0.0.1 port, started by the self-tests and the
database benchmark themselves (initdb and pg_ctl; as the `postgres` user when run as root)."""

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .served import free_port


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    return Path(pg_ctl).parent


@dataclass
class Postgres:
    """A throwaway cluster: its own data folder, trust authentication, 127.0.0.1 only."""

    bin: Path
    folder: Path
    port: int

    def command(self, program: str, *args: str) -> list[str]:
        # initdb and the server refuse to run as root: as root, run them as `postgres`.
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return [*as_postgres, str(self.bin / program), *args]

    def pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        data, log = str(self.folder / "data"), str(self.folder / "log")
        command = self.command("pg_ctl", action, "-D", data, "-l", log, "-o", options, "-w")
        if action == "stop":
            command[-1:] = ["-m", "fast", "-w"]  # ends the sessions the service holds
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def sql(self, statement: str, database: str = "postgres") -> str:
        command = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port)]
        command += ["-U", "postgres", "-d", database, "-XAtq", "-v", "ON_ERROR_STOP=1"]
        result = subprocess.run(
            [*command, "-c", statement], capture_output=True, text=True, timeout=30, check=True
        )
        return result.stdout.strip()

    def new_database(self, template: str = "template0") -> str:
        """A database of its own, a copy of `template` (empty by default); returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE {template}")
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


@contextmanager
def private_cluster() -> Iterator[Postgres]:
    """A new cluster on a free port for as long as the block runs; removed afterwards."""
    # Not under pytest's temporary folder: as root, that one is closed to the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="template-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    server = Postgres(postgres_bin(), folder, free_port())
    init = server.command("initdb", "-D", str(folder / "data"), "-U", "postgres", "-A", "trust")
    try:
        subprocess.run(init, check=True, capture_output=True, timeout=120)
        server.pg_ctl("start")
        yield server
    finally:
        stop = server.command("pg_ctl", "stop", "-D", str(folder / "data"), "-m", "immediate")
        subprocess.run(stop, capture_output=True, check=False, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
