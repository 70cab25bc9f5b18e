"""The security edge of each bake, served for real: headers on every kind of response, Host and
body limits, docs hidden or behind Basic auth in production, the docs rendered by headless
Chromium under their CSP, and Schemathesis finding no 5xx and no response off the schema."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .combinations import API_KEY_BAKE, LAMBDA_BAKE
from .conftest import Baked, once_in, once_per
from .devtools import CHROMIUM, chromium_page
from .served import Service, running
from .test_resilience import character, load_fake_upstream

# The OWASP Secure Headers Project's values (its ci/headers_add.json), with a stricter CSP and
# no Clear-Site-Data, which belongs on a sign-out response only.
API_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "x-permitted-cross-domain-policies": "none",
    "cache-control": "no-store, max-age=0",
}
DOCS_USER = "docs-reader"
DOCS_PASSWORD = "docs-password-for-tests"
SCHEMATHESIS = Path(shutil.which("schemathesis") or "schemathesis")


def prefixed(baked: Baked, **settings: str) -> dict[str, str]:
    """Settings as environment variables; warnings only, as nothing reads the service's output
    until it stops (hundreds of access lines would fill the pipe and block the service)."""
    settings = {"log_level": "WARNING", **settings}
    lenient = settings.get("environment", "development") == "development"
    secrets = {} if lenient else baked.production_secrets()
    prefix = baked.package.upper()
    return {**secrets, **{f"{prefix}_{name.upper()}": value for name, value in settings.items()}}


@pytest.fixture(scope="module")
def service(installed: Baked) -> Iterator[Service]:
    # Schemathesis calls every route, the characters too: they get a fake characters API that
    # answers every id; nobody is refused for the rate (429s are documented, not the point).
    fake = load_fake_upstream(installed)
    with fake.serving() as upstream:
        upstream.default = fake.Reply(body=character)
        settings = prefixed(
            installed,
            max_body_bytes="2000",
            characters_api_url=upstream.url,
            rate_limit_default="100000/minute",
        )
        yield from running(installed.path, installed.package, settings)


@pytest.fixture(scope="module")
def production(installed: Baked) -> Iterator[Service]:
    settings = prefixed(installed, environment="production")
    yield from running(installed.path, installed.package, settings)


def body_route(baked: Baked) -> str:
    """A route that reads a JSON body, in this bake; skip when the bake has none."""
    if baked.context["include_examples"]:
        return "/api/v1/articles"
    if baked.context["include_realtime"]:
        return "/api/v1/realtime/messages"
    pytest.skip("include_examples and include_realtime are off: no route takes a body")


def assert_security_headers(response: httpx.Response) -> None:
    assert {name: response.headers.get(name) for name in API_HEADERS} == API_HEADERS
    assert "camera=()" in response.headers["permissions-policy"]
    assert "clear-site-data" not in response.headers
    assert "server" not in response.headers


def test_every_kind_of_response_carries_the_security_headers(
    installed: Baked, service: Service
) -> None:
    ok = httpx.get(f"{service.url}/health/live")
    missing = httpx.get(f"{service.url}/no/such/thing")
    too_large = httpx.post(f"{service.url}/health/live", content=b"x" * 3000)
    for response, status in [(ok, 200), (missing, 404), (too_large, 413)]:
        assert response.status_code == status
        assert_security_headers(response)
    assert "strict-transport-security" not in ok.headers  # development
    assert too_large.headers["content-type"] == "application/problem+json"
    expected = 422
    if installed.context["include_examples"]:  # reads are open whatever the auth
        invalid = httpx.get(f"{service.url}/api/v1/articles", params={"limit": 1000})
    else:
        invalid = httpx.post(f"{service.url}{body_route(installed)}", json={})
        if installed.context["auth"] != "none":
            expected = 401  # publishing checks the credentials before the body
    assert invalid.status_code == expected
    assert_security_headers(invalid)


def test_a_429_carries_the_security_headers_too(
    installed: Baked, request: pytest.FixtureRequest
) -> None:
    once_in(request, LAMBDA_BAKE, "the edge and the limits are the same whatever the options")
    # Counters in memory: a redis bake has no Redis here (it would serve unchecked).
    settings = prefixed(installed, rate_limit_default="1/minute", rate_limit_storage_uri="memory://")
    for service in running(installed.path, installed.package, settings):
        first = httpx.get(f"{service.url}/openapi.json")
        refused = httpx.get(f"{service.url}/openapi.json")
    assert (first.status_code, refused.status_code) == (200, 429)
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["x-request-id"] == refused.json()["request_id"]
    assert_security_headers(refused)


def test_a_chunked_body_over_the_limit_gets_a_413(installed: Baked, service: Service) -> None:
    route = body_route(installed)
    chunks = iter([b'{"text": "', *[b"x" * 500] * 6, b'"}'])
    response = httpx.post(
        f"{service.url}{route}", content=chunks, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413
    assert_security_headers(response)


def test_a_foreign_host_is_refused(service: Service) -> None:
    response = httpx.get(f"{service.url}/openapi.json", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert_security_headers(response)


def test_production_hides_the_docs_and_adds_hsts(production: Service) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
        response = httpx.get(f"{production.url}{path}")
        assert response.status_code == 404
        assert_security_headers(response)
    live = httpx.get(f"{production.url}/health/live")
    assert live.headers["strict-transport-security"].startswith("max-age=63072000")


def test_production_docs_can_be_opened_behind_basic_auth(
    installed: Baked, request: pytest.FixtureRequest
) -> None:
    once_in(request, API_KEY_BAKE, "the docs' basic auth is the same whatever the options")
    settings = prefixed(
        installed,
        environment="production",
        docs_in_production="true",
        docs_username=DOCS_USER,
        docs_password=DOCS_PASSWORD,
    )
    for service in running(installed.path, installed.package, settings):
        anonymous = httpx.get(f"{service.url}/docs")
        wrong = httpx.get(f"{service.url}/openapi.json", auth=(DOCS_USER, "not-the-password"))
        right = httpx.get(f"{service.url}/openapi.json", auth=(DOCS_USER, DOCS_PASSWORD))
        page = httpx.get(f"{service.url}/docs", auth=(DOCS_USER, DOCS_PASSWORD))
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="docs"')
    assert wrong.status_code == 401
    assert right.status_code == 200 and "/health/live" in right.json()["paths"]
    assert page.status_code == 200 and "swagger-ui" in page.text


def test_production_refuses_docs_without_credentials(installed: Baked) -> None:
    python = installed.path / ".venv" / "bin" / "python"
    env = {**os.environ, **prefixed(installed, environment="production", docs_in_production="1")}
    result = subprocess.run(
        [str(python), "-m", installed.package],
        cwd=installed.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    prefix = installed.package.upper()
    assert f"{prefix}_DOCS_USERNAME: is required with {prefix}_DOCS_IN_PRODUCTION" in line
    assert f"{prefix}_DOCS_PASSWORD: " in line


@pytest.fixture
def chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")


@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/docs", "document.querySelectorAll('.opblock').length"),
        ("/redoc", "document.querySelectorAll('[data-section-id*=\"operation/\"]').length"),
    ],
    ids=["swagger-ui", "redoc"],
)
def test_chromium_renders_the_docs_under_their_csp(
    service: Service, path: str, operation: str, request: pytest.FixtureRequest
) -> None:
    once_per(request, "auth", "the docs' page differs by its security schemes only")
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]
    operations = sum(len(methods) for methods in paths.values())
    with chromium_page() as page:
        page.open(f"{service.url}{path}", ready=f"{operation} >= {operations}")
        assert page.problems() == {"csp": [], "console": []}
        assert page.evaluate(operation) >= operations


def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(
    service: Service, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Against the real server, once: every bake's `make check` runs its contract tests
    (tests/test_contract.py) in-process, in every combination."""
    once_in(request, "default", "each bake's make check runs its contract tests")
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{service.url}/openapi.json",
            "--checks=not_a_server_error,response_schema_conformance",
            "--max-examples=25",
            "--seed=1",
            "--workers=1",
            "--request-timeout=20",  # a loaded CI machine answers slowly, not wrongly
            "--generation-database=none",
            "--no-color",
            # A Server-Sent Events stream never ends by itself: nothing to validate there.
            "--exclude-path-regex=/events$",
        ],
        cwd=tmp_path,  # its cache folder stays out of the checkout
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
