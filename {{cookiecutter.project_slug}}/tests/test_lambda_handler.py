"""The Lambda handler answers API Gateway events, HTTP API (v2) and REST API (v1) alike."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.lambda_handler import handler

# In the default ALLOWED_HOSTS. On AWS, list the API's domain there
# (e.g. abc123.execute-api.eu-west-1.amazonaws.com): any other Host gets a 400.
HOST = "localhost"


@pytest.fixture(autouse=True)
def event_loop_of_a_new_process() -> Iterator[None]:
    """Mangum asks for the main thread's event loop, as a new Lambda process has one; an
    asyncio.run() in an earlier test leaves the main thread without."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


class Context:
    """The parts of the Lambda context object that Mangum may read."""

    function_name = "{{ cookiecutter.project_slug }}"
    aws_request_id = "lambda-test-1"


def http_api_event(path: str, host: str = HOST) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": host, "x-request-id": "lambda-v2"},
        "requestContext": {
            "stage": "$default",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
            },
        },
        "isBase64Encoded": False,
    }


def rest_api_event(path: str) -> dict[str, Any]:
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Host": HOST, "X-Request-ID": "lambda-v1"},
        "multiValueHeaders": {"Host": [HOST], "X-Request-ID": ["lambda-v1"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "requestContext": {"stage": "prod", "identity": {"sourceIp": "203.0.113.9"}},
        "body": None,
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    ("event", "request_id"),
    [(http_api_event("/health/live"), "lambda-v2"), (rest_api_event("/health/live"), "lambda-v1")],
    ids=["http-api-v2", "rest-api-v1"],
)
def test_an_api_gateway_event_for_health_live_gets_200(
    event: dict[str, Any], request_id: str
) -> None:
    response = handler(event, Context())  # type: ignore[arg-type]
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"status": "ok"}
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    assert headers["x-request-id"] == request_id


def test_an_unknown_path_is_a_problem_not_a_crash() -> None:
    response = handler(http_api_event("/no/such/route"), Context())  # type: ignore[arg-type]
    assert response["statusCode"] == 404
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    assert headers["content-type"] == "application/problem+json"
    assert not response["isBase64Encoded"]
    assert json.loads(response["body"])["status"] == 404


def test_a_host_outside_the_allowed_hosts_is_refused() -> None:
    event = http_api_event("/api/v1/no/such/route", host="abc123.execute-api.example.com")
    response = handler(event, Context())  # type: ignore[arg-type]
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["title"] == "Bad Request"
