"""API keys: X-API-Key checked against SHA-256 digests, in constant time; 401 problems."""

import hashlib
import hmac
from typing import Any

import httpx2
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.security import api_keys
from {{ cookiecutter.package_name }}.security.api_keys import (
    ApiKeys,
    hash_api_key,
    require_principal,
)
from {{ cookiecutter.package_name }}.security.principal import Principal
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings, problems

from .conftest import Server, production_settings
from .credentials import TEST_API_KEY, TEST_DIGESTS


@pytest.fixture
def anonymous(app: FastAPI) -> Any:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_key_is_stored_as_its_sha256_digest() -> None:
    assert hash_api_key("abc") == hashlib.sha256(b"abc").hexdigest()
    assert TEST_API_KEY not in str(Settings(_env_file=None, api_key_digests=TEST_DIGESTS))


def test_no_key_is_a_401_problem_with_a_challenge(anonymous: TestClient) -> None:
    response = anonymous.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "APIKey"
    assert response.json()["detail"] == "A valid API key is required in the X-API-Key header"


@pytest.mark.parametrize("key", ["wrong-key", hash_api_key(TEST_API_KEY), TEST_API_KEY + " "])
def test_a_wrong_key_is_a_401(anonymous: TestClient, key: str) -> None:
    response = anonymous.get("/api/v1/me", headers={"X-API-Key": key})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "APIKey"


def test_a_valid_key_names_its_caller(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json() == {"kind": "api_key", "id": "tests", "scopes": []}


def test_the_caller_is_recorded_on_the_request(app: FastAPI) -> None:
    @app.get("/whoami", dependencies=[Depends(require_principal)])
    async def whoami(request: Request) -> str:
        principal: str = request.state.principal
        return principal

    with TestClient(app) as client:
        response = client.get("/whoami", headers={"X-API-Key": TEST_API_KEY})
    assert response.json() == "api_key:tests"


def test_every_digest_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = ApiKeys({"first": hash_api_key("one"), "second": hash_api_key("two")})
    calls: list[bytes] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert keys.identify("one") == Principal(kind="api_key", id="first")
    assert keys.identify("two") == Principal(kind="api_key", id="second")
    assert keys.identify("three") is None
    assert len(calls) == 6


def test_the_openapi_document_declares_the_header(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["APIKeyHeader"]
    assert scheme == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (`make api-key` makes one)",
    }
    assert schema["paths"]["/api/v1/me"]["get"]["security"] == [{"APIKeyHeader": []}]
{%- if cookiecutter.include_examples %}


def test_article_writes_need_a_key_and_reads_do_not(anonymous: TestClient) -> None:
    article = {"name": "Locked", "price": 1}
    assert anonymous.post("/api/v1/articles", json=article).status_code == 401
    assert anonymous.put("/api/v1/articles/1", json=article).status_code == 401
    assert anonymous.delete("/api/v1/articles/1").status_code == 401
    assert anonymous.get("/api/v1/articles").status_code == 200
{%- endif %}


def test_digests_come_as_name_digest_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = hash_api_key("k")
    monkeypatch.setenv(f"{ENV_PREFIX}API_KEY_DIGESTS", f" ci:{digest.upper()} , b:{digest}")
    assert Settings(_env_file=None).api_key_digests == {"ci": digest, "b": digest}


@pytest.mark.parametrize("value", ["ci:not-hex", "just-a-key", f":{'a' * 64}", "ci:abc"])
def test_a_raw_key_or_a_bad_pair_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}API_KEY_DIGESTS", value)
    with pytest.raises(ValidationError, match="expected name:digest pairs"):
        Settings(_env_file=None)


def test_production_refuses_to_start_without_a_key() -> None:
    with pytest.raises(ValidationError, match="must list at least one key digest") as error:
        Settings(_env_file=None, **production_settings(api_key_digests={}))
    assert [name for name, _ in problems(error.value)] == ["api_key_digests"]
    Settings(_env_file=None, **production_settings(api_key_digests=TEST_DIGESTS))


def test_make_api_key_prints_a_key_and_its_pair(capsys: pytest.CaptureFixture[str]) -> None:
    api_keys.main(["billing"])
    key_line, pair_line = capsys.readouterr().out.splitlines()
    key = key_line.rsplit(" ", 1)[1]
    assert pair_line.endswith(f" billing:{hash_api_key(key)}")
    assert len(key) >= 40


def test_the_real_server_checks_the_key(server: Server) -> None:
    assert httpx2.get(f"{server.url}/api/v1/me").status_code == 401
    response = httpx2.get(f"{server.url}/api/v1/me", headers=server.headers)
    assert response.status_code == 200
    assert response.json()["id"] == "tests"
