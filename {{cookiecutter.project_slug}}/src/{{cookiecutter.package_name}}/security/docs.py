"""API docs: Swagger UI at /docs, ReDoc at /redoc, the schema at /openapi.json.

Public in development. In every other environment (staging too) they are absent (404) unless
DOCS_IN_PRODUCTION is set, and then behind HTTP Basic auth (settings refuse missing or short
credentials). Swagger UI
and ReDoc come from the fastapi-standalone-docs package (which bundles swagger-ui-dist and
redoc with their licences; only its files are used) and are served by the service itself: no
CDN and no inline script, so the pages run under the docs policy in headers.py.
"""

import html
import secrets
from functools import cache
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from ..settings import Settings
from .headers import NO_CACHE, Headers, docs_headers
from .rate_limit import RateLimitedRoute

OPENAPI_PATH = "/openapi.json"
SWAGGER_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets/"
# FastAPI's own docs routes are off: this module serves them.
BUILT_IN_DOCS_OFF: dict[str, Any] = {"openapi_url": None, "docs_url": None, "redoc_url": None}

BUNDLED = files("fastapi_standalone_docs") / "static"
ASSETS = {
    "swagger-ui.css": (BUNDLED / "swagger" / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (BUNDLED / "swagger" / "swagger-ui-bundle.js", "text/javascript"),
    "redoc.standalone.js": (BUNDLED / "redoc" / "redoc.standalone.js", "text/javascript"),
    "logo-mini.svg": (BUNDLED / "redoc" / "logo-mini.svg", "image/svg+xml"),
}
REDOC_LOGO_PATH = REDOC_PATH + "/logo-mini.svg"  # where the bundled ReDoc looks for its logo
# Relative addresses, so the pages also work under a proxy's path prefix.
SWAGGER_INIT = b"""window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
"""
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
{head}
</head>
<body>
{body}
</body>
</html>
"""
SWAGGER_PAGE = PAGE.format(
    title="{title} - Swagger UI",
    head='<link rel="stylesheet" href="docs/assets/swagger-ui.css">',
    body='<div id="swagger-ui"></div>\n'
    '<script src="docs/assets/swagger-ui-bundle.js"></script>\n'
    '<script src="docs/assets/swagger-init.js"></script>',
)
REDOC_PAGE = PAGE.format(
    title="{title} - ReDoc",
    head="",
    body='<redoc spec-url="openapi.json"></redoc>\n'
    '<script src="docs/assets/redoc.standalone.js"></script>',
)


def docs_enabled(settings: Settings) -> bool:
    return settings.environment == "development" or settings.docs_in_production


def docs_headers_by_path(settings: Settings) -> dict[str, Headers]:
    """The docs' own policy and caching for the edge, by path; none while the docs are off."""
    if not docs_enabled(settings):
        return {}
    pages = docs_headers(settings, NO_CACHE)
    assets = docs_headers(settings, "private, max-age=86400")
    asset_paths = [ASSETS_PATH + name for name in [*ASSETS, "swagger-init.js"]]
    return {
        SWAGGER_PATH: pages,
        REDOC_PATH: pages,
        **{path: assets for path in [*asset_paths, REDOC_LOGO_PATH]},
    }


@cache
def asset(name: str) -> bytes:
    """Read on first use: a service whose docs nobody opens keeps them out of memory."""
    return ASSETS[name][0].read_bytes()


def basic_auth(settings: Settings) -> list[Any]:
    """A dependency checking both fields in constant time, or none without credentials."""
    username = settings.docs_username.get_secret_value().encode()
    password = settings.docs_password.get_secret_value().encode()
    if not username:
        return []
    challenge = {"WWW-Authenticate": 'Basic realm="docs", charset="UTF-8"'}
    credentials = HTTPBasic(realm="docs")

    async def require_credentials(
        given: Annotated[HTTPBasicCredentials, Depends(credentials)],
    ) -> None:
        # Both comparisons always run: the time taken tells nothing about which one failed.
        user_ok = secrets.compare_digest(given.username.encode(), username)
        password_ok = secrets.compare_digest(given.password.encode(), password)
        if not (user_ok & password_ok):
            raise HTTPException(401, "Invalid credentials for the API docs.", challenge)

    return [Depends(require_credentials)]


def docs_router(settings: Settings) -> APIRouter:
    """The docs' routes; an empty router while the docs are off (outside development, by
    default)."""
    router = APIRouter(
        route_class=RateLimitedRoute, include_in_schema=False, dependencies=basic_auth(settings)
    )
    if not docs_enabled(settings):
        return router
    title = html.escape(settings.service_name)
    swagger_page = SWAGGER_PAGE.format(title=title)
    redoc_page = REDOC_PAGE.format(title=title)

    @router.get(OPENAPI_PATH)
    async def openapi(request: Request) -> dict[str, Any]:
        schema: dict[str, Any] = request.app.openapi()
        return schema  # returned as data, so the rate-limit headers join it

    @router.get(SWAGGER_PATH)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_page)

    @router.get(REDOC_PATH)
    async def redoc() -> HTMLResponse:
        return HTMLResponse(redoc_page)

    @router.get(REDOC_LOGO_PATH)
    async def redoc_logo() -> Response:
        return await bundled_asset("logo-mini.svg")

    @router.get(ASSETS_PATH + "swagger-init.js")
    async def swagger_init() -> Response:
        return Response(SWAGGER_INIT, media_type="text/javascript")

    @router.get(ASSETS_PATH + "{name}")
    async def bundled_asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404)
        return Response(asset(name), media_type=ASSETS[name][1])

    return router
