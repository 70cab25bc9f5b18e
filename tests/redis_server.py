"""A throwaway redis-server for the self-tests (rate-limit counters, the characters cache): a
free 127.0.0.1 port, no persistence, its files in the test's temporary folder."""

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .served import free_port


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start (exit code {process.poll()})")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Redis:
    config: Path
    port: int
    process: subprocess.Popen[bytes] = field(init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *args: str) -> int:
        """An integer reply of redis-cli."""
        cli = ["redis-cli", "-p", str(self.port), *args]
        return int(subprocess.run(cli, capture_output=True, text=True, check=True).stdout)

    def start(self) -> None:
        """Starts it (again, after a stop: same port, empty)."""
        self.process = subprocess.Popen(["redis-server", str(self.config)], stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.process, "redis-server")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    port = free_port()
    config = tmp_path / "redis.conf"
    config.write_text(f'port {port}\nbind 127.0.0.1\ndir {tmp_path}\nsave ""\nappendonly no\n')
    server = Redis(config, port)
    server.start()
    try:
        yield server
    finally:
        server.process.send_signal(signal.SIGCONT)
        stop(server.process)
