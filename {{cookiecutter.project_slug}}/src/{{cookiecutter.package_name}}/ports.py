"""A port already taken stops the process with one line naming the setting that chose it,
rather than a traceback (the worker's metrics) or a bind error logged after start-up (uvicorn).

The line keeps the system's words, "address already in use", that scripts and tests look for.
"""

import errno
import socket

from .settings import ENV_PREFIX


def refuse_busy_port(host: str, port: int, setting: str, *fixes: str) -> None:
    """Exits when `port` on `host` is taken: binds it as the server will, then lets it go.

    `setting` is the field's name without the prefix (PORT); `fixes`, other ways out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                return  # another failure (a host not on this machine) the server reports itself
            fix = " or ".join([f"set {ENV_PREFIX}{setting} to a free port", *fixes])
            raise SystemExit(
                f"ERROR: port {port} on {host}: address already in use; {fix}"
            ) from None
