"""Auth against the real service (`python -m <package>`), per combination: API keys, or the OAuth2
password flow issuing JWTs; with auth=none, no protected route exists. Credentials are made with
the baked project's own commands (`make api-key`, `make password-hash` run the same modules)."""

import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from .conftest import Baked, run
from .served import Service, running

ARTICLE = {"name": "Guarded", "price": 2.5}


def realtime(project: Baked, service: Service) -> tuple[str, str]:
    """The WebSocket and the publishing URLs; skip when the bake has no realtime endpoints."""
    if not project.context["include_realtime"]:
        pytest.skip("include_realtime is off")
    base = f"{service.url}/api/v1/realtime"
    return base.replace("http://", "ws://") + "/ws", f"{base}/messages"


def echoes(url: str, **options: object) -> bool:
    """Whether the real server accepts this handshake and broadcasts what the socket sends."""
    try:
        with connect(url, open_timeout=10, **options) as socket:
            socket.send("guarded")
            return bool(json.loads(socket.recv(timeout=10))["text"] == "guarded")
    except InvalidStatus as refused:
        assert refused.response.status_code == 403
        return False


def python_module(project: Baked, module: str, *args: str, stdin: str = "") -> str:
    """Run one of the baked package's modules with the project's interpreter; its stdout."""
    result = subprocess.run(
        [str(project.path / ".venv" / "bin" / "python"), "-m", f"{project.package}.{module}", *args],
        cwd=project.path, input=stdin, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout


def refused_start(project: Baked, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings}
    return subprocess.run(
        [str(project.path / ".venv" / "bin" / "python"), "-m", project.package],
        cwd=project.path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def only_for(project: Baked, auth: str) -> None:
    if project.context["auth"] != auth:
        pytest.skip(f"auth is {project.context['auth']}, not {auth}")


def test_without_auth_no_protected_route_exists(installed: Baked) -> None:
    only_for(installed, "none")
    for service in running(installed.path, installed.package):
        assert httpx.get(f"{service.url}/api/v1/me").status_code == 404
        assert httpx.post(f"{service.url}/api/v1/auth/token").status_code == 404
        schema = httpx.get(f"{service.url}/openapi.json").json()
        assert "securitySchemes" not in schema.get("components", {})


# API keys


@pytest.fixture(scope="module")
def api_key(installed: Baked, broker: dict[str, str]) -> Iterator[tuple[Service, str]]:
    """The service in production with one key, made by `make api-key`'s module."""
    only_for(installed, "api_key")
    key_line, pair_line = python_module(installed, "security.api_keys", "ci").splitlines()
    key, pair = key_line.rsplit(" ", 1)[1], pair_line.rsplit(" ", 1)[1]
    prefix = installed.package.upper()
    settings = {
        **installed.production_secrets(),
        f"{prefix}_ENVIRONMENT": "production",
        f"{prefix}_API_KEY_DIGESTS": pair,
        **broker,
    }
    for service in running(installed.path, installed.package, settings):
        yield service, key


def test_api_key_missing_or_wrong_is_a_401_problem(api_key: tuple[Service, str]) -> None:
    service, key = api_key
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": key.upper()}):
        response = httpx.get(f"{service.url}/api/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "APIKey"
        assert response.headers["content-type"] == "application/problem+json"


def test_api_key_valid_names_the_caller(api_key: tuple[Service, str]) -> None:
    service, key = api_key
    response = httpx.get(f"{service.url}/api/v1/me", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert response.json() == {"kind": "api_key", "id": "ci", "scopes": []}


def test_api_key_guards_article_writes(installed: Baked, api_key: tuple[Service, str]) -> None:
    if not installed.context["include_examples"]:
        pytest.skip("include_examples is off")
    service, key = api_key
    url = f"{service.url}/api/v1/articles"
    assert httpx.post(url, json=ARTICLE).status_code == 401
    assert httpx.post(url, json=ARTICLE, headers={"X-API-Key": key}).status_code == 201
    assert httpx.get(url).status_code == 200


def test_api_key_guards_realtime_publishing(
    installed: Baked, api_key: tuple[Service, str]
) -> None:
    service, key = api_key
    ws, messages = realtime(installed, service)
    assert not echoes(ws)
    assert not echoes(ws, subprotocols=["api-key", key.upper()])
    assert echoes(ws, additional_headers={"X-API-Key": key})  # a program
    assert echoes(ws, subprotocols=["api-key", key])  # a browser
    assert httpx.post(messages, json={"text": "hi"}).status_code == 401
    published = httpx.post(messages, json={"text": "hi"}, headers={"X-API-Key": key})
    assert published.status_code == 202


def test_api_key_production_refuses_to_start_without_keys(installed: Baked) -> None:
    only_for(installed, "api_key")
    prefix = installed.package.upper()
    settings = {**installed.production_secrets(), f"{prefix}_API_KEY_DIGESTS": ""}
    result = refused_start(installed, {**settings, f"{prefix}_ENVIRONMENT": "production"})
    assert result.returncode == 1
    assert f"{prefix}_API_KEY_DIGESTS: must list at least one key digest" in result.stderr


# JWT


@pytest.fixture(scope="module")
def jwt_service(installed: Baked, broker: dict[str, str]) -> Iterator[Service]:
    """The service in production with its own secret and its users, hashed by `make
    password-hash`'s module: alice may write articles, carol publish realtime messages, bob
    has no scope."""
    only_for(installed, "jwt")
    users = {
        "alice": {
            "password_hash": python_module(installed, "security.passwords", stdin="alice-pw\n"),
            "scopes": ["articles:write"],
        },
        "bob": {"password_hash": python_module(installed, "security.passwords", stdin="bob-pw\n")},
    }
    if installed.context["include_realtime"]:
        carol = python_module(installed, "security.passwords", stdin="carol-pw\n")
        users["carol"] = {"password_hash": carol, "scopes": ["realtime:write"]}
    for user in users.values():
        user["password_hash"] = str(user["password_hash"]).strip()
    prefix = installed.package.upper()
    settings = {
        **installed.production_secrets(),
        f"{prefix}_ENVIRONMENT": "production",
        f"{prefix}_JWT_SECRET": secrets.token_urlsafe(48),
        f"{prefix}_JWT_USERS": json.dumps(users),
        # These tests sign in many times from one address (the limit has its own tests).
        f"{prefix}_RATE_LIMIT_SIGN_IN": "1000/minute",
        **broker,
    }
    yield from running(installed.path, installed.package, settings)


def sign_in(service: Service, username: str, password: str) -> httpx.Response:
    form = {"username": username, "password": password}
    return httpx.post(f"{service.url}/api/v1/auth/token", data=form, timeout=30)


def bearer(response: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_jwt_good_password_gets_a_token_for_me(jwt_service: Service) -> None:
    signed_in = sign_in(jwt_service, "alice", "alice-pw")
    assert signed_in.status_code == 200
    assert signed_in.json()["token_type"] == "bearer"
    me = httpx.get(f"{jwt_service.url}/api/v1/me", headers=bearer(signed_in))
    assert me.status_code == 200
    assert me.json() == {"kind": "user", "id": "alice", "scopes": ["articles:write"]}


def test_jwt_bad_password_or_user_is_a_401(jwt_service: Service) -> None:
    for username, password in (("alice", "wrong"), ("nobody", "alice-pw")):
        response = sign_in(jwt_service, username, password)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"


def test_jwt_missing_or_tampered_token_is_a_401(jwt_service: Service) -> None:
    token = sign_in(jwt_service, "bob", "bob-pw").json()["access_token"]
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"
    for headers in ({}, {"Authorization": f"Bearer {tampered}"}):
        response = httpx.get(f"{jwt_service.url}/api/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_jwt_article_writes_need_the_scope(installed: Baked, jwt_service: Service) -> None:
    if not installed.context["include_examples"]:
        pytest.skip("include_examples is off")
    url = f"{jwt_service.url}/api/v1/articles"
    assert httpx.post(url, json=ARTICLE).status_code == 401
    denied = httpx.post(url, json=ARTICLE, headers=bearer(sign_in(jwt_service, "bob", "bob-pw")))
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    alice = bearer(sign_in(jwt_service, "alice", "alice-pw"))
    allowed = httpx.post(url, json=ARTICLE, headers=alice)
    if installed.context["database"] == "postgresql":
        # Past the scope check, the write reaches the database the production secrets name,
        # where nothing listens: its 503 (tests/test_database.py writes to a real one).
        assert allowed.status_code == 503, allowed.text
        assert allowed.json()["detail"] == "The database is unavailable; try again later."
    else:
        assert allowed.status_code == 201


def test_jwt_realtime_publishing_needs_the_scope(installed: Baked, jwt_service: Service) -> None:
    ws, messages = realtime(installed, jwt_service)
    bob = sign_in(jwt_service, "bob", "bob-pw").json()["access_token"]
    carol = sign_in(jwt_service, "carol", "carol-pw").json()["access_token"]
    assert not echoes(ws)
    assert not echoes(ws, subprotocols=["bearer", bob])  # no realtime:write
    assert echoes(ws, additional_headers={"Authorization": f"Bearer {carol}"})  # a program
    assert echoes(ws, subprotocols=["bearer", carol])  # a browser
    text = {"text": "hi"}
    assert httpx.post(messages, json=text).status_code == 401
    for token, status in ((bob, 403), (carol, 202)):
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.post(messages, json=text, headers=headers).status_code == status


def test_jwt_production_refuses_the_development_secret(installed: Baked) -> None:
    only_for(installed, "jwt")
    prefix = installed.package.upper()
    settings = {**installed.production_secrets(), f"{prefix}_ENVIRONMENT": "production"}
    del settings[f"{prefix}_JWT_SECRET"]
    result = refused_start(installed, settings)
    assert result.returncode == 1
    assert f"{prefix}_JWT_SECRET: is the published development secret" in result.stderr


def test_jwt_production_refuses_to_start_without_users(installed: Baked) -> None:
    only_for(installed, "jwt")
    prefix = installed.package.upper()
    settings = {**installed.production_secrets(), f"{prefix}_JWT_USERS": "{}"}
    result = refused_start(installed, {**settings, f"{prefix}_ENVIRONMENT": "production"})
    assert result.returncode == 1
    assert f"{prefix}_JWT_USERS: must list at least one user" in result.stderr


def test_jwt_users_that_are_not_json_are_named_with_the_other_bad_settings(
    installed: Baked,
) -> None:
    """JWT_USERS is decoded by the settings' own validator: malformed JSON is one more bad
    setting of the one line, named by its variable next to the others."""
    only_for(installed, "jwt")
    prefix = installed.package.upper()
    result = refused_start(installed, {f"{prefix}_JWT_USERS": "{alice}", f"{prefix}_PORT": "0"})
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"ERROR: invalid settings: {prefix}_PORT: ")
    assert f"; {prefix}_JWT_USERS: not valid JSON (" in line


def test_jwt_make_dev_user_is_the_one_step_to_sign_in_and_write(
    installed: Baked, broker: dict[str, str]
) -> None:
    """`make dev-user` writes a user holding every scope to .env; the service then signs it in."""
    only_for(installed, "jwt")
    try:
        printed = run(["make", "dev-user"], installed.path).stdout
        password = re.findall(r"password: (\S+)", printed)[-1]
        for service in running(installed.path, installed.package, broker):
            token = bearer(sign_in(service, "dev", password))
            me = httpx.get(f"{service.url}/api/v1/me", headers=token).json()
            written = httpx.post(f"{service.url}/api/v1/articles", json=ARTICLE, headers=token)
    finally:
        (installed.path / ".env").unlink(missing_ok=True)  # the other tests run without one
    assert me["id"] == "dev"
    if installed.context["include_examples"]:
        assert "articles:write" in me["scopes"]
        assert written.status_code == 201
