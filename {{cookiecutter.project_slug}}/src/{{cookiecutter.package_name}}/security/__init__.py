"""The service's edge: who may call it, from where, and how.

install_security() installs, from the outside in (the request crosses them in this order):
  1. EdgeMiddleware: Host check (400), body size limit (413), security headers on every
     response, those refusals included; the 500 handler adds the same headers (errors.py),
  2. CORS, when origins are configured,
  3. GZip for complete response bodies from GZIP_MINIMUM_BYTES up,
and the API docs routes. Middleware installed before install_security() runs inside the edge,
so its refusals (a 429, say) get the headers too.
"""

from fastapi import FastAPI

from ..settings import Settings
from .compression import GZipMiddleware
from .cors import install_cors
from .docs import docs_headers_by_path, install_docs
from .edge import EdgeMiddleware, HostRule
from .headers import api_headers


def install_security(app: FastAPI, settings: Settings) -> None:
    install_docs(app, settings)
    app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_minimum_bytes)
    install_cors(app, settings)
    headers = api_headers(settings)
    app.add_middleware(
        EdgeMiddleware,
        headers=headers,
        headers_by_path=docs_headers_by_path(settings),
        hosts=None if "*" in settings.allowed_hosts else HostRule(settings.allowed_hosts),
        max_body_bytes=settings.max_body_bytes,
    )
    app.state.security_headers = headers  # for the 500 handler, which runs outside
