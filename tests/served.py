"""A baked service started the production way (`python -m <package>`) on a free local port."""

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Service:
    process: subprocess.Popen[str]
    url: str
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Read what the service prints as it prints it: a full pipe would block the service.
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> str:
        """SIGTERM, as an orchestrator would; returns everything the service printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.reader.join(timeout=10)
        return "".join(self.output)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_service(
    project: Path, package: str, settings: dict[str, str] | None = None, timeout: float = 30
) -> Service:
    """Start `python -m <package>`; `settings` are extra environment variables (prefix included)."""
    port = free_port()
    prefix = package.upper()
    env = {**os.environ, f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(port)}
    env.update(settings or {})
    process = subprocess.Popen(
        [str(project / ".venv" / "bin" / "python"), "-m", package],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    service = Service(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"{service.url}/health/live", timeout=1)
            return service
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the service did not start:\n{service.stop()}")


def running(
    project: Path, package: str, settings: dict[str, str] | None = None, timeout: float = 30
) -> Iterator[Service]:
    service = start_service(project, package, settings, timeout)
    try:
        yield service
    finally:
        if service.process.poll() is None:
            service.stop()
