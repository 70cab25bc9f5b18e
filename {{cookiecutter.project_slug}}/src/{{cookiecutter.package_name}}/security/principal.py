"""Who is calling: the principal an authenticated route sees, and the 401 problem."""

from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict

from ..errors import Problem


class Principal(BaseModel):
    """An authenticated caller: its kind (a user, an API key...), its id, and its scopes."""

    model_config = ConfigDict(frozen=True)  # one instance may serve many requests

    kind: str
    id: str
    scopes: list[str] = []


def signed_in(request: Request, principal: Principal) -> Principal:
    """Record the caller on the request: the rate limiter keys per-caller limits on it."""
    request.state.principal = f"{principal.kind}:{principal.id}"
    return principal


def unauthorized(detail: str, challenge: str) -> HTTPException:
    """401: no or bad credentials; the challenge tells the client which scheme to use."""
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


Responses = dict[int | str, dict[str, Any]]
UNAUTHENTICATED: Responses = {
    401: {"model": Problem, "description": "Missing or invalid credentials"}
}
