from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings

PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}


def test_cors_is_off_without_origins(client: TestClient) -> None:
    response = client.options("/health/live", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in response.headers


def test_a_listed_origin_is_allowed_and_sees_the_request_id() -> None:
    settings = Settings(_env_file=None, cors_origins=["https://app.example"])
    with TestClient(create_app(settings)) as client:
        preflight = client.options("/health/live", headers=PREFLIGHT)
        simple = client.get("/health/live", headers={"Origin": "https://app.example"})
        other = client.get("/health/live", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert simple.headers["access-control-expose-headers"] == "X-Request-ID"
    assert "access-control-allow-origin" not in other.headers


def test_every_answer_varies_on_origin_once() -> None:
    """Caches must not serve one origin's answer to another, nor to a request without one."""
    settings = Settings(_env_file=None, cors_origins=["https://app.example"])
    with TestClient(create_app(settings)) as client:
        plain = client.get("/health/live")
        simple = client.get("/health/live", headers={"Origin": "https://app.example"})
        other = client.get("/health/live", headers={"Origin": "https://evil.example"})
    for response in (plain, simple, other):
        assert response.status_code == 200
        assert response.headers.get_list("vary") == ["Origin"]
    assert "access-control-allow-origin" not in plain.headers


def test_a_compressed_answer_varies_on_origin_and_encoding() -> None:
    settings = Settings(_env_file=None, cors_origins=["https://app.example"], gzip_minimum_bytes=0)
    with TestClient(create_app(settings)) as client:
        plain = client.get("/health/live", headers={"accept-encoding": "gzip"})
        simple = client.get(
            "/health/live", headers={"accept-encoding": "gzip", "origin": "https://app.example"}
        )
    for response in (plain, simple):
        assert response.headers["content-encoding"] == "gzip"
        varies = ", ".join(response.headers.get_list("vary")).split(", ")
        assert sorted(varies) == ["Accept-Encoding", "Origin"]
