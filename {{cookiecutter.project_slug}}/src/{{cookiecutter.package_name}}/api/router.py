"""Every API resource, under /api/v1 (API_PREFIX, which each resource's router starts with).

FastAPI 0.165 keeps an included router nested and matches its routes twice on every request
(+24 µs a request measured, about a tenth of one). So the API's HTTP routes join the app's own
route table, each bound to this app's dependency_overrides as include_router would bind it,
ahead of every other route: the API is the hot path. The routers are still included (after,
out of the schema) for their lifespans and their WebSocket routes; a router with a route-level
body size limit is included as it is (see flat_routes).
"""

import copy

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, request_response
{%- if cookiecutter.include_examples %}

from .articles import router as articles_router
from .characters import router as characters_router
{%- endif %}
{%- if cookiecutter.include_realtime %}
from .realtime import router as realtime_router
{%- endif %}
{%- if cookiecutter.auth != "none" %}
from .me import router as me_router
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
from .tokens import router as tokens_router
{%- endif %}

RESOURCES: list[APIRouter] = [
    # Add yours here: each router with prefix=f"{API_PREFIX}/<resource>".
{%- if cookiecutter.include_examples %}
    articles_router,
    characters_router,
{%- endif %}
{%- if cookiecutter.include_realtime %}
    realtime_router,
{%- endif %}
{%- if cookiecutter.auth != "none" %}
    me_router,
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    tokens_router,
{%- endif %}
]


def bound_copy(route: APIRoute, app: FastAPI) -> APIRoute:
    """This app's copy of a route: it answers through app.dependency_overrides."""
    route = copy.copy(route)
    route.dependency_overrides_provider = app
    route.app = request_response(route.get_route_handler())
    return route


def flat_routes(router: APIRouter) -> list[APIRoute]:
    """The router's HTTP routes, when they can leave it: not if one has a body size limit of
    its own (FastAPI applies those in the nested route; that router stays nested)."""
    routes = [route for route in router.routes if isinstance(route, APIRoute)]
    return [] if any(route.max_body_size is not None for route in routes) else routes


def include_api(app: FastAPI) -> None:
    """The API's HTTP routes first, then the routers (lifespans, WebSocket routes)."""
    flat = [(router, flat_routes(router)) for router in RESOURCES]
    for _, routes in flat:
        app.router.routes.extend(bound_copy(route, app) for route in routes)
    for router, routes in flat:
        app.include_router(router, include_in_schema=not routes)
