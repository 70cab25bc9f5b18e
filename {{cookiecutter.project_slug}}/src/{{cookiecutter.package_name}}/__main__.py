"""Production entry point: `python -m <package>`, or the console script named after the project.

Starts uvicorn from the settings (host, port, workers, trusted proxies) with production flags.
With several workers, their metrics are gathered in PROMETHEUS_MULTIPROC_DIR (see metrics.py).
`--reload` (what `make run` uses) restarts it on code changes, one process, same log format.
"""

import argparse

import uvicorn

from .observability.logging import setup_logging
from .observability.metrics import prepare_multiprocess_dir
from .ports import refuse_busy_port
from .settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reload", action="store_true", help="restart on code changes")
    reload = parser.parse_args(argv).reload
    settings = get_settings()
    setup_logging(settings)  # before uvicorn's first line, the reloader's included
    refuse_busy_port(settings.host, settings.port, "PORT", "stop what listens on it")
    prepare_multiprocess_dir(settings)  # before the workers start
    uvicorn.run(
        "{{ cookiecutter.package_name }}.main:app",
        host=settings.host,
        port=settings.port,
        workers=1 if reload else settings.workers,
        reload=reload,
        # On SIGTERM, requests still running after this are cancelled: the process exits
        # within the orchestrator's grace period, its lifespan's shutdown done.
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        log_config=None,  # our logging (LOG_FORMAT), set up above and in each worker
        server_header=False,
        access_log=False,  # ours has the route, duration and trace id (observability/)
        # Believe X-Forwarded-* only from the proxies we were told about, never by default, and
        # only when they write X-Forwarded-For (uvicorn reads no other header).
        proxy_headers=bool(settings.trusted_proxies)
        and settings.forwarded_header == "x-forwarded-for",
        # The same list and walk as security/client.py, so both name the same client.
        forwarded_allow_ips=[str(network) for network in settings.trusted_proxies] or None,
{%- if cookiecutter.include_realtime %}
        # uvicorn itself closes (1009) a WebSocket sending more, before buffering it whole.
        ws_max_size=settings.realtime_max_message_bytes,
{%- endif %}
    )


if __name__ == "__main__":
    main()
