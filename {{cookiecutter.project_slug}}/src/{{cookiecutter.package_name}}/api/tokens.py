"""/api/v1/auth/token: the OAuth2 password flow, trading a user's password for a bearer token."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from pydantic import BaseModel, Field

from ..errors import Problem
from ..security.principal import Responses, unauthorized
from ..security.passwords import PasswordChecksBusy
from ..security.rate_limit import RATE_LIMITED, RateLimitedRoute, RateLimitsDep, rate_limit
from ..security.tokens import PasswordsDep, TokensDep, UsersDep
from ..security.users import authenticate
from . import API_PREFIX

router = APIRouter(
    prefix=f"{API_PREFIX}/auth",
    route_class=RateLimitedRoute,
    tags=["auth"],
    responses=RATE_LIMITED,
)


class PasswordGrant(BaseModel):
    """The form of RFC 6749 §4.3 (what Swagger UI's Authorize button sends)."""

    grant_type: Literal["password"] = "password"
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    scope: str = Field(default="", max_length=1024, description="Space-separated scopes")


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


BAD_PASSWORD: Responses = {
    401: {"model": Problem, "description": "Unknown user or wrong password"}
}
BUSY: Responses = {
    503: {"model": Problem, "description": "Too many sign-ins at once; see Retry-After"}
}


@router.post(
    "/token",
    responses={**BAD_PASSWORD, **BUSY},
    dependencies=[Depends(rate_limit("rate_limit_sign_in"))],  # per client address
)
async def issue_token(
    grant: Annotated[PasswordGrant, Form()],
    request: Request,
    response: Response,
    tokens: TokensDep,
    users: UsersDep,
    passwords: PasswordsDep,
    limits: RateLimitsDep,
) -> Token:
    """A token with the user's scopes, or only those asked for in `scope`."""
    # Per user name too: guessing one user's password from many addresses is limited as well.
    user_key = f"user:{grant.username}"
    await limits.enforce(
        "rate_limit_sign_in", "rate_limit_sign_in_user", user_key, request, response
    )
    try:
        user = await authenticate(users, passwords, grant.username, grant.password)
    except PasswordChecksBusy:
        detail = "Too many sign-ins are being checked; retry shortly."
        raise HTTPException(503, detail, headers={"Retry-After": "1"}) from None
    if user is None:
        raise unauthorized("Incorrect username or password", "Bearer")
    asked = grant.scope.split()
    scopes = [scope for scope in user.scopes if not asked or scope in asked]
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1: never cache a token
    token = tokens.issue(user.username, scopes)
    return Token(access_token=token, expires_in=tokens.lifetime_seconds)
