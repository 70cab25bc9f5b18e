"""Bearer tokens: short-lived JWTs (HS256) issued by POST /api/v1/auth/token and checked on
every protected request by `require_principal`, which also enforces the route's scopes.

Tokens are stateless: a user removed or given fewer scopes keeps what a token already holds
until it expires (JWT_EXPIRE_MINUTES). A verified token is remembered until it expires, so a
client reusing its token pays a dict lookup instead of a JWT decode on every request.
"""

import time
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from starlette.requests import HTTPConnection

from ..errors import Problem
from ..settings import Settings
from .passwords import PasswordChecker
from .principal import UNAUTHENTICATED, Principal, Responses, signed_in, unauthorized
from .users import ConfiguredUsers, UserRepository

ALGORITHM = "HS256"  # the only one accepted: a token naming another (or "none") is refused
LEEWAY_SECONDS = 10  # clock skew between replicas
REMEMBERED_TOKENS = 10_000
SIGN_IN_PATH = "/api/v1/auth/token"
{%- if cookiecutter.include_examples or cookiecutter.include_realtime %}
SCOPES = {
{%- if cookiecutter.include_examples %}
    "articles:write": "Create, replace and delete articles",
{%- endif %}
{%- if cookiecutter.include_realtime %}
    "realtime:write": "Publish realtime messages (POST /messages, or open the WebSocket)",
{%- endif %}
}
{%- else %}
SCOPES: dict[str, str] = {}  # e.g. {"reports:read": "Read reports"}
{%- endif %}
# What a protected route documents: 401 without a valid token, 403 without a scope it needs.
DENIED: Responses = {
    **UNAUTHENTICATED,
    403: {"model": Problem, "description": "The token lacks a scope the route needs"},
}
# What the document tells clients about the tokens (RFC 8725: JWT Best Current Practices).
TOKENS = (
    "Short-lived JWTs signed with HS256, following RFC8725 (JSON Web Token Best Current "
    "Practices): one algorithm accepted (never `none`), the issuer checked, exp, iat, iss and "
    "sub required. A token expires after JWT_EXPIRE_MINUTES: sign in again for a new one."
)
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=SIGN_IN_PATH, scopes=SCOPES, description=TOKENS, auto_error=False
)


class TokenAuthority:
    """Signs tokens and checks them, with the secret and lifetime from the settings."""

    def __init__(self, secret: str, issuer: str, lifetime_seconds: int) -> None:
        self.secret = secret
        self.issuer = issuer
        self.lifetime_seconds = lifetime_seconds
        self.verified: dict[str, tuple[float, Principal]] = {}  # token -> (exp, principal)

    def issue(self, subject: str, scopes: list[str]) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "scope": " ".join(scopes),
            "iat": now,
            "exp": now + self.lifetime_seconds,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The token's principal; raises jwt.InvalidTokenError for any bad or expired token."""
        remembered = self.verified.get(token)
        if remembered is not None and time.time() < remembered[0] + LEEWAY_SECONDS:
            return remembered[1]
        claims = jwt.decode(
            token,
            self.secret,
            algorithms=[ALGORITHM],
            issuer=self.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "sub"]},
        )
        scope = claims.get("scope", "")
        scopes = scope.split() if isinstance(scope, str) else []
        principal = Principal(kind="user", id=claims["sub"], scopes=scopes)
        self.remember(token, float(claims["exp"]), principal)
        return principal

    def remember(self, token: str, expires: float, principal: Principal) -> None:
        self.verified.pop(token, None)
        if len(self.verified) >= REMEMBERED_TOKENS:
            del self.verified[next(iter(self.verified))]  # the oldest
        self.verified[token] = (expires, principal)


def auth_state(settings: Settings) -> dict[str, Any]:
    """What the lifespan keeps for authentication (main.py): the token authority, the users
    who may sign in, and the password checker."""
    authority = TokenAuthority(
        settings.jwt_secret.get_secret_value(),
        issuer=settings.service_name,
        lifetime_seconds=settings.jwt_expire_minutes * 60,
    )
    return {
        "tokens": authority,
        "users": ConfiguredUsers(settings.jwt_users),
        "passwords": PasswordChecker(),
    }


async def get_tokens(connection: HTTPConnection) -> TokenAuthority:
    tokens: TokenAuthority = connection.state.tokens
    return tokens


async def get_users(request: Request) -> UserRepository:
    users: UserRepository = request.state.users
    return users


async def get_passwords(request: Request) -> PasswordChecker:
    passwords: PasswordChecker = request.state.passwords
    return passwords


TokensDep = Annotated[TokenAuthority, Depends(get_tokens)]
UsersDep = Annotated[UserRepository, Depends(get_users)]
PasswordsDep = Annotated[PasswordChecker, Depends(get_passwords)]


async def require_principal(
    security_scopes: SecurityScopes,
    request: Request,
    token: Annotated[str | None, Security(oauth2_scheme)],
    tokens: TokensDep,
) -> Principal:
    """The caller behind a valid bearer token holding every scope the route asks for."""
    return signed_in(request, authorize(tokens, token, security_scopes))


def authorize(tokens: TokenAuthority, token: str | None, needed: SecurityScopes) -> Principal:
    """The token's principal if it holds every needed scope; else 401 (no or bad token) or 403."""
    if token is None:
        raise unauthorized("A bearer token is required", "Bearer")
    try:
        principal = tokens.verify(token)
    except jwt.InvalidTokenError:
        challenge = 'Bearer error="invalid_token"'
        raise unauthorized("The token is invalid or expired", challenge) from None
    missing = [scope for scope in needed.scopes if scope not in principal.scopes]
    if missing:
        challenge = f'Bearer error="insufficient_scope", scope="{needed.scope_str}"'
        detail = f"The token lacks the scope {' '.join(missing)}"
        raise HTTPException(403, detail, headers={"WWW-Authenticate": challenge})
    return principal
