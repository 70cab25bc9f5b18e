"""Production entry point: `python -m <package>`, or the console script named after the project.

Starts uvicorn from the settings (host, port, workers, trusted proxies) with production flags.
With several workers, their metrics are gathered in PROMETHEUS_MULTIPROC_DIR (see metrics.py).

The garbage collector is off while the service starts: the imports and the app's build make
objects that live as long as the process, and collecting them on the way is wasted work (about
a tenth of the start-up). The lifespan freezes them and turns the collector back on
(observability/middleware.py). Only when run as `python -m`: tests and other entry points import
as usual, and so do the processes of several workers (multiprocessing never runs a package's
__main__ module in them).
"""

import gc

if __name__ == "__main__":
    gc.disable()

import uvicorn  # noqa: E402 (after the collector is off: most of the start-up is imports)

from .observability.logging import setup_logging  # noqa: E402
from .observability.metrics import prepare_multiprocess_dir  # noqa: E402
from .settings import get_settings  # noqa: E402


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    prepare_multiprocess_dir(settings)  # before the workers start
    if settings.workers > 1:
        gc.enable()  # this process only watches the workers, which start on their own
    uvicorn.run(
        "{{ cookiecutter.package_name }}.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,  # our JSON logging, set up above and in each worker
        server_header=False,
        access_log=False,  # ours has the route, duration and trace id (observability/)
        # Believe X-Forwarded-* only from the proxies we were told about, never by default.
        proxy_headers=bool(settings.trusted_proxies),
        # The same list and walk as security/client.py, so both name the same client.
        forwarded_allow_ips=[str(network) for network in settings.trusted_proxies] or None,
    )


if __name__ == "__main__":
    main()
