"""A private RabbitMQ node for the self-tests: its own data and log folders, its own epmd, free
127.0.0.1 ports, run as the `rabbitmq` user when root (as the packaged server expects). Started
once per session by whichever test needs it first (about 5-12 s)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .served import free_port

USER, PASSWORD = "template", "template-broker-secret"  # nosec B105: a throwaway node's
START_SECONDS = 60


@dataclass
class RabbitMQ:
    """A throwaway node: its own data and log folders, its own epmd, 127.0.0.1 only."""

    folder: Path
    port: int
    dist_port: int
    epmd_port: int
    epmd: subprocess.Popen[bytes] | None = None
    server: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"amqp://{USER}:{PASSWORD}@127.0.0.1:{self.port}/"

    def command(self, *args: str) -> list[str]:
        # The server refuses to run as root: as root, run it as `rabbitmq`.
        as_rabbitmq = ["runuser", "-u", "rabbitmq", "--"] if os.geteuid() == 0 else []
        env = {
            "HOME": str(self.folder),  # its Erlang cookie
            "RABBITMQ_NODENAME": f"template-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "rabbitmq.pid"),
            # No plugins (the packaged management plugin would listen on 15672); a user of its
            # own (rabbitmq.conf), as production settings refuse guest.
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
        }
        return [*as_rabbitmq, "env", *(f"{k}={v}" for k, v in env.items()), *args]

    def start(self) -> None:
        if self.epmd is None:
            # Its own epmd (Erlang's name server) on a free port, rather than the machine's.
            epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
            self.epmd = subprocess.Popen([epmd, "-port", str(self.epmd_port)])
        log = (self.folder / "server.out").open("ab")
        self.server = subprocess.Popen(
            self.command(shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_SECONDS
        while not accepts(self.port):
            if time.monotonic() > deadline or self.server.poll() is not None:
                output = (self.folder / "server.out").read_text(errors="replace")
                pytest.fail(f"RabbitMQ did not start:\n{output[-3000:]}")
            time.sleep(0.2)
        self.pids.append(int((self.folder / "rabbitmq.pid").read_text().strip()))

    def stop(self) -> None:
        """SIGTERM to the broker's own process group; waits until all of it has exited (the
        Erlang VM outlives its launcher by a few seconds). The launcher, our child, is reaped
        first: until then it stays in the group as a zombie, and the wait would last its 30 s."""
        for pid in self.pids:
            try:
                group = os.getpgid(pid)
            except ProcessLookupError:
                continue
            os.killpg(group, signal.SIGTERM)
            if self.server is not None:
                self.server.wait(timeout=30)
            wait_for_group(group)
        self.pids.clear()
        if self.server is not None:
            self.server.wait(timeout=30)


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for_group(group: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)


def prepare(folder: Path) -> None:
    """The node's folder: no plugins, its user, owned by `rabbitmq` when run as root."""
    (folder / "enabled_plugins").write_text("[].\n")
    (folder / "rabbitmq.conf").write_text(f"default_user = {USER}\ndefault_pass = {PASSWORD}\n")
    if os.geteuid() == 0:
        for path in (folder, folder / "enabled_plugins", folder / "rabbitmq.conf"):
            shutil.chown(path, "rabbitmq")


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    if shutil.which("rabbitmq-server") is None and not Path("/usr/sbin/rabbitmq-server").exists():
        pytest.fail("RabbitMQ is not installed (apt-get install rabbitmq-server; .ci/run does)")
    # Not under pytest's temporary folder: as root, that one is closed to the rabbitmq user.
    folder = Path(tempfile.mkdtemp(prefix="template-rabbitmq-"))
    prepare(folder)
    node = RabbitMQ(folder, free_port(), free_port(), free_port())
    try:
        node.start()
        yield node
    finally:
        node.stop()
        if node.epmd is not None:
            node.epmd.terminate()
            node.epmd.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


