"""Production entry point: `python -m <package>`, or the console script named after the project.

Starts uvicorn from the settings (host, port, workers, trusted proxies) with production flags.
With several workers, their metrics are gathered in PROMETHEUS_MULTIPROC_DIR (see metrics.py).
"""

import uvicorn

from .observability.logging import setup_logging
from .observability.metrics import prepare_multiprocess_dir
from .settings import get_settings


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    prepare_multiprocess_dir(settings)  # before the workers start
    uvicorn.run(
        "{{ cookiecutter.package_name }}.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
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
