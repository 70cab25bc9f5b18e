"""Every error is application/problem+json; a 500 shows nothing of the failure."""

from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings
from .conftest import LogLines


async def boom() -> None:
    raise RuntimeError("database password is hunter2")


async def item(number: int, size: int, name: str) -> dict[str, Any]:
    return {"number": number, "size": size, "name": name}


async def status(code: int) -> None:
    raise HTTPException(code, f"Answered with {code}.")


class Note(BaseModel):
    text: str


async def note(body: Note) -> Note:
    return body


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.add_api_route("/test/boom", boom)
    app.add_api_route("/test/items/{number}", item)
    app.add_api_route("/test/status/{code}", status)
    app.add_api_route("/test/notes", note, methods=["POST"])
    app.add_api_route("/test/notes", item, methods=["GET"])  # one path, two routes
    return app


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["status"] == 404
    assert body["instance"] == "/nowhere"
    assert body["request_id"] == response.headers["x-request-id"]


def test_wrong_method_is_a_405_problem(client: TestClient) -> None:
    response = client.delete("/health/live")
    assert response.status_code == 405
    assert response.json()["title"] == "Method Not Allowed"
    assert response.headers["allow"] == "GET"


def test_a_405_allows_every_method_of_the_path_not_only_the_first_routes(
    client: TestClient,
) -> None:
    """RFC 9110 §15.5.6: Allow lists what the resource supports, whichever route serves it."""
    response = client.put("/test/notes")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("code", "title"),
    [(418, "I'm a Teapot"), (499, "Client Error"), (520, "Server Error"), (599, "Server Error")],
)
def test_any_valid_status_is_kept_even_without_a_standard_phrase(
    client: TestClient, code: int, title: str
) -> None:
    response = client.get(f"/test/status/{code}")
    assert response.status_code == code
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["title"]) == (code, title)
    assert body["detail"] == f"Answered with {code}."


def test_validation_error_lists_each_field_without_echoing_input(client: TestClient) -> None:
    response = client.get("/test/items/abc", params={"size": "s3cr3t"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["detail"] == "3 invalid fields in the request"
    fields = {tuple(error["loc"]): error for error in body["errors"]}
    assert fields[("path", "number")]["type"] == "int_parsing"
    assert fields[("query", "size")]["type"] == "int_parsing"
    assert fields[("query", "name")]["type"] == "missing"
    assert all(set(error) == {"loc", "msg", "type"} for error in body["errors"])
    assert "s3cr3t" not in response.text


def test_unhandled_exception_is_a_bare_500_problem(client: TestClient) -> None:
    response = client.get("/test/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Internal Server Error"
    assert body["detail"] == "The server could not handle the request."
    assert body["request_id"] == response.headers["x-request-id"]
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


def test_unhandled_exception_is_logged_with_traceback_and_request_id(
    client: TestClient, log_lines: LogLines
) -> None:
    response = client.get("/test/boom", headers={"X-Request-ID": "trace-me-1"})
    assert response.status_code == 500
    errors = [line for line in log_lines() if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "trace-me-1"
    assert "RuntimeError: database password is hunter2" in errors[0]["exception"]


def test_openapi_documents_problem_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "Problem" in schema["components"]["schemas"]
    responses = schema["paths"]["/test/items/{number}"]["get"]["responses"]
    assert set(responses["422"]["content"]) == {"application/problem+json"}
    readiness = schema["paths"]["/health/ready"]["get"]["responses"]["503"]
    assert set(readiness["content"]) == {"application/json"}


@pytest.mark.parametrize(
    "headers",
    [{"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}, {}],
    ids=["text", "form", "none"],
)
def test_a_body_sent_as_anything_but_json_is_a_415_problem_saying_so(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post("/test/notes", content=b'{"text": "hi"}', headers=headers)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "The body must be JSON, sent with Content-Type: application/json."
    )


def test_json_of_the_wrong_shape_or_no_body_at_all_is_still_a_422(client: TestClient) -> None:
    assert client.post("/test/notes", json=["hi"]).status_code == 422
    assert client.post("/test/notes").status_code == 422  # the body is missing
    merge_patch = {"content-type": "application/merge-patch+json"}
    sent = client.post("/test/notes", content=b'{"text": "hi"}', headers=merge_patch)
    assert sent.status_code == 200


@pytest.mark.parametrize("status", ["400", "413", "415"])
def test_openapi_documents_the_body_problems_where_a_json_body_is_read(
    client: TestClient, status: str
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    refused = paths["/test/notes"]["post"]["responses"][status]
    assert set(refused["content"]) == {"application/problem+json"}
    assert status not in paths["/test/items/{number}"]["get"]["responses"]


def test_a_body_that_is_not_utf8_json_is_the_documented_400(client: TestClient) -> None:
    response = client.post(
        "/test/notes", content=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
