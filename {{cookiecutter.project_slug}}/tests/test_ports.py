"""A port already taken is one line naming the setting that chose it, and how to get out."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from {{ cookiecutter.package_name }}.ports import refuse_busy_port
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_a_busy_port_stops_with_one_line_naming_the_setting(busy_port: int) -> None:
    with pytest.raises(SystemExit) as stopped:
        refuse_busy_port("127.0.0.1", busy_port, "PORT", "stop what listens on it")
    assert str(stopped.value) == (
        f"ERROR: port {busy_port} on 127.0.0.1: address already in use; "
        f"set {ENV_PREFIX}PORT to a free port or stop what listens on it"
    )


def test_a_free_port_passes() -> None:
    refuse_busy_port("127.0.0.1", 0, "PORT")  # 0: any free port, as a free one binds


def test_a_host_not_on_this_machine_is_left_to_the_server() -> None:
    refuse_busy_port("203.0.113.1", 8000, "PORT")  # a documentation address: cannot be bound


def start(module: str, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, f"{ENV_PREFIX}HOST": "127.0.0.1", **settings}
    command = [sys.executable, "-m", module]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_the_service_on_a_busy_port_exits_with_one_line_naming_the_setting(
    busy_port: int,
) -> None:
    result = start("{{ cookiecutter.package_name }}", {f"{ENV_PREFIX}PORT": str(busy_port)})
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "startup" not in output  # stopped before starting
    assert result.stderr.splitlines()[-1] == (
        f"ERROR: port {busy_port} on 127.0.0.1: address already in use; "
        f"set {ENV_PREFIX}PORT to a free port or stop what listens on it"
    )
