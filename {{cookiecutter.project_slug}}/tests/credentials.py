"""Credentials the shared fixtures sign in with (tests/conftest.py): the `client` and the real
`server` call protected routes as a caller allowed everything. Auth's own tests build their own
clients to check what happens without these."""

from typing import Any
{% if cookiecutter.auth == "api_key" %}
from {{ cookiecutter.package_name }}.security.api_keys import HEADER, hash_api_key
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings

TEST_API_KEY = "key-for-the-tests-only"
TEST_DIGESTS = {"tests": hash_api_key(TEST_API_KEY)}

# Settings of the test app, and environment of the real test server.
AUTH_SETTINGS: dict[str, Any] = {"api_key_digests": TEST_DIGESTS}
SERVER_ENV = {f"{ENV_PREFIX}API_KEY_DIGESTS": f"tests:{TEST_DIGESTS['tests']}"}
# What production needs on top of the defaults to start: a key.
PRODUCTION_SETTINGS: dict[str, Any] = AUTH_SETTINGS


def auth_headers(settings: Settings) -> dict[str, str]:
    return {HEADER: TEST_API_KEY}
{% else %}
from {{ cookiecutter.package_name }}.security.tokens import SCOPES, TokenAuthority
from {{ cookiecutter.package_name }}.settings import Settings

# The default (development) secret signs the tests' tokens: nothing to configure.
AUTH_SETTINGS: dict[str, Any] = {}
SERVER_ENV: dict[str, str] = {}
# What production needs on top of the defaults to start: a secret of its own, and a user.
PRODUCTION_SETTINGS: dict[str, Any] = {
    "jwt_secret": "production-secret-of-the-tests-0123456",
    "jwt_users": {"ops": {"password_hash": "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"}},
}


def auth_headers(settings: Settings) -> dict[str, str]:
    """A bearer token for a user holding every scope, signed with the settings' secret."""
    secret = settings.jwt_secret.get_secret_value()
    token = TokenAuthority(secret, settings.service_name, 600).issue("tests", list(SCOPES))
    return {"Authorization": f"Bearer {token}"}
{% endif -%}
