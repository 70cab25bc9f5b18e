"""A baked service started the production way (`python -m <package>`) on a free local port."""

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


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


# The command line that serves on a port, when not `python -m <package>`.
Command = Callable[[int], list[str]]


def start_service(
    project: Path,
    package: str,
    settings: dict[str, str] | None = None,
    timeout: float = 30,
    command: Command | None = None,
) -> Service:
    """Start `python -m <package>` (or `command`); `settings` are extra environment variables
    (prefix included).

    A free port can be taken by another test's server between choosing it and the service
    binding it: then the service exits ("address already in use") and starts again on another.
    """
    for _ in range(3):
        service = launch(project, package, free_port(), settings or {}, command)
        if live(service, timeout):
            return service
        output = service.stop()
        if "address already in use" not in output:
            raise RuntimeError(f"the service did not start:\n{output}")
    raise RuntimeError(f"the service found no free port in 3 tries:\n{output}")


def launch(
    project: Path, package: str, port: int, settings: dict[str, str], command: Command | None
) -> Service:
    prefix = package.upper()
    env = {**os.environ, f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(port), **settings}
    process = subprocess.Popen(
        command(port) if command else [str(project / ".venv" / "bin" / "python"), "-m", package],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Service(process, f"http://127.0.0.1:{port}")


def live(service: Service, timeout: float) -> bool:
    """Whether the service answers on its port from a socket of its own (not another server's)."""
    port = int(service.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and service.process.poll() is None:
        if listens(service.process.pid, port):
            try:
                httpx.get(f"{service.url}/health/live", timeout=1)
                return True
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    return False


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds the listening TCP socket on `port` (Linux: /proc)."""
    try:
        fds, table = list(Path(f"/proc/{pid}/fd").iterdir()), Path(f"/proc/{pid}/net/tcp").read_text()
    except FileNotFoundError:  # the process has just exited
        return False
    sockets = set()
    for fd in fds:
        with contextlib.suppress(OSError):  # closed meanwhile
            sockets.add(os.readlink(fd).removeprefix("socket:[").rstrip("]"))
    for line in table.splitlines()[1:]:
        fields = line.split()  # local address, ..., state (0A: listening), ..., inode
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port and fields[9] in sockets:
            return True
    return False


def running(
    project: Path,
    package: str,
    settings: dict[str, str] | None = None,
    timeout: float = 30,
    command: Command | None = None,
) -> Iterator[Service]:
    service = start_service(project, package, settings, timeout, command)
    try:
        yield service
    finally:
        if service.process.poll() is None:
            service.stop()


class Receiver(BaseHTTPRequestHandler):
    """OTLP/HTTP (protobuf) trace receiver: keeps every span it is sent."""

    spans: list[Any] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def otlp_receiver() -> Iterator[tuple[str, list[Any]]]:
    """An OTLP/HTTP endpoint for OTEL_EXPORTER_OTLP_ENDPOINT, and the spans it received."""
    spans: list[Any] = []
    handler = type("OneReceiver", (Receiver,), {"spans": spans})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", spans
    finally:
        server.shutdown()
