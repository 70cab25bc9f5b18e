"""The contract: requests generated from the OpenAPI document for every operation, valid and
invalid, each answer checked against the document (status, headers, body) by schemathesis."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as explored
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

{%- if cookiecutter.include_examples %}

from {{ cookiecutter.package_name }}.settings import Settings

from .test_characters import character
from .upstream import FakeUpstream, Reply
{%- endif %}

# Every check but one: a PUT or DELETE guarded by If-Match rightly answers 412 to a generated
# ETag, which positive_data_acceptance would count as valid data refused.
EXCLUDED_CHECKS = [positive_data_acceptance]
{%- if cookiecutter.include_examples %}


def characters(path: str) -> Any:
    """The characters API: one character for /character/7, a list for /character/7,9."""
    ids = path.rsplit("/", 1)[1].split(",")
    found = [character(f"/character/{id_}") for id_ in ids if id_.isdigit()]
    return found if len(ids) > 1 else found[0]


@pytest.fixture
def settings(settings: Settings, upstream: FakeUpstream) -> Settings:
    """The tests' settings, the upstream a fake characters API."""
    upstream.default = Reply(body=characters)
    return settings.model_copy(update={"characters_api_url": upstream.url})
{%- endif %}


@pytest.fixture
def contract_client(app: FastAPI) -> Iterator[TestClient]:
    """conftest's `app` (with messaging but no database, its broker a fake), lifespan running."""
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def event_streams(document: dict[str, Any]) -> set[tuple[str, str]]:
    """The operations that answer text/event-stream."""
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "text/event-stream" in operation["responses"].get("200", {}).get("content", {})
    }


def takes_input(document: dict[str, Any]) -> bool:
    """Whether any operation has a parameter or a body."""
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    return any(op.get("parameters") or op.get("requestBody") for op in operations)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_matches_the_document(
    contract_client: TestClient, mode: GenerationMode
) -> None:
    client = contract_client
    document = client.get("/openapi.json").json()
    if mode == GenerationMode.NEGATIVE and not takes_input(document):
        pytest.skip("no operation takes a parameter or a body to make invalid")
    schema = schemathesis.openapi.from_dict(document)

    @given(case=schema.as_strategy(generation_mode=mode))
    @explored(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    def answers_as_documented(case: schemathesis.Case[Any]) -> None:
        if (case.method, case.path) in event_streams(document):
            return  # a stream never ends by itself: its own tests read it
        request = case.as_transport_kwargs(base_url=str(client.base_url))
        request.pop("cookies")  # no operation reads a cookie
        if isinstance(request.get("data"), (bytes, str)):  # a raw body, in httpx's words
            request["content"] = request.pop("data")
        response = client.request(**request)
        case.validate_response(response, excluded_checks=EXCLUDED_CHECKS)

    answers_as_documented()


def integers(node: Any) -> Iterator[dict[str, Any]]:
    """Every integer schema of the document, wherever it is."""
    if isinstance(node, list):
        for item in node:
            yield from integers(item)
    elif isinstance(node, dict):
        if node.get("type") == "integer":
            yield node
        for value in node.values():
            yield from integers(value)


def test_every_integer_has_a_format_and_bounds(contract_client: TestClient) -> None:
    document = contract_client.get("/openapi.json").json()
    found = list(integers(document))
    assert found
    for schema in found:
        assert schema["format"] in ("int32", "int64"), schema
        assert "minimum" in schema and "maximum" in schema, schema
        if schema["format"] == "int32":
            assert -(2**31) <= schema["minimum"] and schema["maximum"] <= 2**31 - 1, schema


def test_every_answer_documents_its_request_id(contract_client: TestClient) -> None:
    document = contract_client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                headers = response.get("headers", {})
                # A 500 leaves the middleware that sets the headers: none are promised.
                expected = set() if status == "500" else {"X-Request-ID"}
                assert expected <= set(headers), (method, path, status)
    assert "x-request-id" in contract_client.get("/health/live").headers
