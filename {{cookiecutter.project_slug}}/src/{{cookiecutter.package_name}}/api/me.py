"""/api/v1/me: the authenticated caller, as the service sees it."""

from typing import Annotated

from fastapi import APIRouter, Security

from ..security.principal import Principal
{%- if cookiecutter.auth == "api_key" %}
from ..security.api_keys import DENIED, require_principal
{%- else %}
from ..security.tokens import DENIED, require_principal
{%- endif %}
from ..security.rate_limit import RATE_LIMITED, RateLimitedRoute
from . import API_PREFIX

router = APIRouter(
    prefix=API_PREFIX, route_class=RateLimitedRoute, tags=["auth"], responses=RATE_LIMITED
)


@router.get("/me", responses=DENIED)
async def me(principal: Annotated[Principal, Security(require_principal)]) -> Principal:
    return principal
