"""The OAuth2 password flow: tokens for good passwords, scopes enforced, bad tokens refused.
The secret and the users, and the commands that make them: test_token_users.py."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import jwt
import pytest
from fastapi import FastAPI, Request, Security
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.security import passwords, tokens
from {{ cookiecutter.package_name }}.security.principal import Principal
from {{ cookiecutter.package_name }}.security.tokens import (
    TokenAuthority,
    require_principal,
)
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import Server

TOKEN_URL = "/api/v1/auth/token"
ISSUER = "{{ cookiecutter.project_slug }}"  # the service name
SECRET = "a-secret-for-these-tests-only-" + "0123456789" * 4  # 64 bytes, enough for HS512
# Cheap argon2 parameters keep the tests fast; `make password-hash` uses the strong defaults.
CHEAP = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
USERS = {
    "alice": {"password_hash": CHEAP.hash("alice's password"), "scopes": ["reports:read"]},
    "bob": {"password_hash": CHEAP.hash("bob's password"), "scopes": []},
}


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, jwt_secret=SECRET, jwt_users=USERS)


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    @app.get("/reports", dependencies=[Security(require_principal, scopes=["reports:read"])])
    async def reports(request: Request) -> str:
        principal: str = request.state.principal
        return principal

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def sign_in(client: TestClient, username: str, password: str, **form: str) -> Any:
    return client.post(TOKEN_URL, data={"username": username, "password": password, **form})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "sub": "alice", "scope": "reports:read",
            "iat": now, "exp": now + 60, **changes}  # fmt: skip


def test_a_good_password_gets_a_short_lived_token(anonymous: TestClient) -> None:
    response = sign_in(anonymous, "alice", "alice's password")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    decoded = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"], issuer=ISSUER)
    assert decoded["sub"] == "alice"
    assert decoded["scope"] == "reports:read"
    assert decoded["exp"] - decoded["iat"] == 15 * 60


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong"), ("nobody", "alice's password")]
)
def test_a_wrong_password_or_user_is_a_401_problem(
    anonymous: TestClient, username: str, password: str
) -> None:
    response = sign_in(anonymous, username, password)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] == "Incorrect username or password"


def test_an_unknown_user_costs_a_password_check_too(
    anonymous: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    original = PasswordHash.verify

    def spy(self: PasswordHash, password: str, password_hash: str) -> bool:
        checked.append(password_hash)
        return original(self, password, password_hash)

    monkeypatch.setattr(PasswordHash, "verify", spy)
    assert sign_in(anonymous, "nobody", "guess").status_code == 401
    assert len(checked) == 1 and checked[0].startswith("$argon2id$")
    assert checked[0] not in {user["password_hash"] for user in USERS.values()}


def test_the_password_check_runs_off_the_event_loop(
    app: FastAPI, anonymous: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    original = PasswordHash.verify

    def spy(self: PasswordHash, password: str, password_hash: str) -> bool:
        threads.append(threading.current_thread().name)
        return original(self, password, password_hash)

    monkeypatch.setattr(PasswordHash, "verify", spy)
    assert sign_in(anonymous, "alice", "alice's password").status_code == 200
    assert threads and threads[0] != threading.main_thread().name
    assert anonymous.app_state["passwords"].limiter.total_tokens == passwords.CHECKS_AT_ONCE


def test_only_the_asked_scopes_are_granted(anonymous: TestClient) -> None:
    token = sign_in(anonymous, "alice", "alice's password", scope="other").json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["scope"] == ""


def test_me_answers_with_the_token_holder(anonymous: TestClient) -> None:
    token = sign_in(anonymous, "alice", "alice's password").json()["access_token"]
    response = anonymous.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"kind": "user", "id": "alice", "scopes": ["reports:read"]}


def test_no_token_is_a_401_with_a_bearer_challenge(anonymous: TestClient) -> None:
    response = anonymous.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


def test_a_scope_the_token_lacks_is_a_403_problem(anonymous: TestClient) -> None:
    token = sign_in(anonymous, "bob", "bob's password").json()["access_token"]
    response = anonymous.get("/reports", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    challenge = 'Bearer error="insufficient_scope", scope="reports:read"'
    assert response.headers["www-authenticate"] == challenge


def test_the_caller_is_recorded_on_the_request(anonymous: TestClient) -> None:
    token = sign_in(anonymous, "alice", "alice's password").json()["access_token"]
    assert anonymous.get("/reports", headers=bearer(token)).json() == "user:alice"


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(claims(exp=int(time.time()) - 60), SECRET, algorithm="HS256"),  # expired
        jwt.encode(claims(), "another-secret-of-at-least-32-bytes!", algorithm="HS256"),
        jwt.encode(claims(), SECRET, algorithm="HS512"),  # wrong algorithm
        jwt.encode(claims(), None, algorithm="none"),  # unsigned
        jwt.encode(claims(iss="someone-else"), SECRET, algorithm="HS256"),
        jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET, algorithm="HS256"),
        "not.a.token",
    ],
    ids=["expired", "other-secret", "HS512", "alg-none", "other-issuer", "no-exp", "garbage"],
)
def test_a_bad_token_is_a_401(anonymous: TestClient, token: str) -> None:
    response = anonymous.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_a_tampered_token_is_a_401(anonymous: TestClient) -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    header, payload, signature = token.split(".")
    forged = jwt.encode(claims(sub="admin"), SECRET, algorithm="HS256").split(".")[1]
    response = anonymous.get("/api/v1/me", headers=bearer(f"{header}.{forged}.{signature}"))
    assert response.status_code == 401
{%- if cookiecutter.include_examples %}


def test_article_writes_need_the_articles_write_scope(anonymous: TestClient) -> None:
    article = {"name": "Locked", "price": 1}
    assert anonymous.post("/api/v1/articles", json=article).status_code == 401
    token = sign_in(anonymous, "alice", "alice's password").json()["access_token"]
    response = anonymous.post("/api/v1/articles", json=article, headers=bearer(token))
    assert response.status_code == 403
    assert anonymous.get("/api/v1/articles").status_code == 200
{%- endif %}


def test_a_verified_token_is_remembered_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authority = TokenAuthority(SECRET, "issuer", lifetime_seconds=60)
    token = authority.issue("alice", ["reports:read"])
    decoded: list[str] = []
    decode = jwt.decode

    def spy(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", spy)
    first = authority.verify(token)
    assert authority.verify(token) is first
    assert decoded == [token]
    expiry = authority.verified[token][0]
    monkeypatch.setattr(time, "time", lambda: expiry + tokens.LEEWAY_SECONDS)
    authority.verify(token)  # past its expiry, the token is decoded (and checked) again
    assert decoded == [token, token]


def test_the_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "REMEMBERED_TOKENS", 2)
    authority = TokenAuthority(SECRET, "issuer", lifetime_seconds=60)
    issued = [authority.issue(name, []) for name in ("a", "b", "c")]
    for token in issued:
        authority.verify(token)
    assert list(authority.verified) == issued[1:]


def test_the_openapi_document_declares_the_password_flow(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == TOKEN_URL
    assert scheme["flows"]["password"]["scopes"] == tokens.SCOPES
    # The checks RFC 8725 asks for, which verify() makes: said where clients read.
    assert "RFC8725" in scheme["description"] and tokens.ALGORITHM in scheme["description"]


def test_the_real_server_accepts_its_tokens(server: Server) -> None:
    assert httpx2.get(f"{server.url}/api/v1/me").status_code == 401
    response = httpx2.get(f"{server.url}/api/v1/me", headers=server.headers)
    assert response.status_code == 200
    assert response.json()["id"] == "tests"


def test_principal_is_immutable() -> None:
    with pytest.raises(ValidationError):
        Principal(kind="user", id="a").id = "b"  # type: ignore[misc]


def test_sign_ins_are_limited_per_client_and_per_user_name() -> None:
    """Per client: one address trying many names; per name: many addresses trying one."""
    limited = Settings(
        _env_file=None, jwt_secret=SECRET, jwt_users=USERS, rate_limit_sign_in="2/minute"
    )
    app = create_app(limited)
    with TestClient(app, client=("198.51.100.1", 1000)) as first:
        names = ("alice", "alice", "carol")
        statuses = [sign_in(first, name, "wrong").status_code for name in names]
    with TestClient(app, client=("198.51.100.2", 1000)) as second:
        alice = sign_in(second, "alice", "alice's password")  # alice's third try: refused
        bob = sign_in(second, "bob", "bob's password")
    assert statuses == [401, 401, 429]
    assert alice.status_code == 429 and "retry-after" in alice.headers
    assert bob.status_code == 200


def test_a_full_password_check_queue_answers_503(
    anonymous: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(passwords, "CHECKS_WAITING", 0)  # the queue is full already
    response = sign_in(anonymous, "alice", "alice's password")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
