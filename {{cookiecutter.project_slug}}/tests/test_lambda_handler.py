"""The Lambda handler answers API Gateway events, HTTP API (v2) and REST API (v1) alike, and
starts the app once per container."""

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from {{ cookiecutter.package_name }} import lambda_handler
from {{ cookiecutter.package_name }}.lambda_handler import handler
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from .sentry_sink import serving

# In the default ALLOWED_HOSTS. On AWS, list the API's domain there
# (e.g. abc123.execute-api.eu-west-1.amazonaws.com): any other Host gets a 400.
HOST = "localhost"


@pytest.fixture(autouse=True)
def the_containers_event_loop() -> None:
    """A container's thread runs only the handler; here, an asyncio.run() in an earlier test
    leaves the thread without a current loop: give the container's back."""
    asyncio.set_event_loop(lambda_handler.loop)


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


def in_a_new_process(
    script: str, event: dict[str, Any], **settings: str
) -> subprocess.CompletedProcess[str]:
    """`script` run with the event as its argument, as a container's cold start would."""
    env = {**os.environ, **{f"{ENV_PREFIX}{name}": value for name, value in settings.items()}}
    return subprocess.run(
        [sys.executable, "-c", script, json.dumps(event)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )


def test_three_invocations_start_the_app_once() -> None:
    """In a new process, as a container's cold start (this one imported the handler already)."""
    script = (
        "import json, sys\n"
        "from {{ cookiecutter.package_name }}.lambda_handler import handler\n"
        "for _ in range(3):\n"
        "    print(handler(json.loads(sys.argv[1]), None)['statusCode'])\n"
    )
    result = in_a_new_process(script, http_api_event("/health/live"), LOG_FORMAT="json")
    lines = result.stdout.splitlines()
    logged = [json.loads(line)["message"] for line in lines if line.startswith("{")]
    assert logged.count("starting") == 1
    assert [line for line in lines if not line.startswith("{")] == ["200", "200", "200"]


def test_an_invocation_sends_its_spans_before_it_returns() -> None:
    """A frozen container may never run again: nothing the invocation traced waits in a buffer.

    In a new process whose span processor would hold spans far longer than the test runs."""
    script = (
        "import json, sys\n"
        "from opentelemetry.sdk.trace.export import BatchSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from {{ cookiecutter.package_name }}.main import app\n"
        "spans = InMemorySpanExporter()\n"
        "held = BatchSpanProcessor(spans, schedule_delay_millis=600_000)\n"
        "app.state.tracing.extra_processors.append(held)\n"
        "from {{ cookiecutter.package_name }}.lambda_handler import handler\n"
        "print(handler(json.loads(sys.argv[1]), None)['statusCode'])\n"
        "print([span.name for span in spans.get_finished_spans()])\n"
    )
    result = in_a_new_process(script, http_api_event("/no/such/route"), TRACE_SAMPLE_RATIO="1")
    status, names = result.stdout.splitlines()[-2:]
    assert status == "404"
    assert names == "['GET']"


def test_an_invocation_sends_its_error_reports_before_it_returns() -> None:
    """A frozen container may never run again: Sentry has answered the invocation's event
    before the handler returns, though it takes a second to answer.

    In a new process, whose route fails with an unhandled error."""
    script = (
        "import json, sys, time\n"
        "from {{ cookiecutter.package_name }}.main import app\n"
        "@app.get('/probe/fail')\n"
        "async def fail() -> None:\n"
        "    raise RuntimeError('boom in an invocation')\n"
        "from {{ cookiecutter.package_name }}.lambda_handler import handler\n"
        "print(handler(json.loads(sys.argv[1]), None)['statusCode'])\n"
        "print(time.time())\n"
    )
    with serving(hold_seconds=1.0) as sink:
        result = in_a_new_process(script, http_api_event("/probe/fail"), SENTRY_DSN=sink.dsn)
    status, returned_at = result.stdout.splitlines()[-2:]
    assert status == "500"
    errors = [event["exception"]["values"][-1]["value"] for event in sink.events()]
    assert "boom in an invocation" in errors
    assert sink.answered and sink.answered[0] < float(returned_at)
