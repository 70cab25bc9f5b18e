"""The example articles' versions: each change a new ETag; If-None-Match answers 304, If-Match
refuses a stale copy with 412, either header past its documented bound is a 422."""

from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.api.articles import ETAGS_MAX_LENGTH

from .test_articles import URL, create

ITEM = URL + "/{article_id}"  # the path in the OpenAPI document


def test_a_get_with_the_current_etag_is_a_304_without_a_body(client: TestClient) -> None:
    path = client.post(URL, json={"name": "Lamp", "price": 3}).headers["location"]
    for held in ['"1"', 'W/"1"', '"9", "1"', "*"]:
        cached = client.get(path, headers={"If-None-Match": held})
        assert cached.status_code == 304, held
        assert cached.content == b""
        assert cached.headers["etag"] == '"1"'
    client.put(path, json={"name": "Lamp", "price": 4})
    changed = client.get(path, headers={"If-None-Match": '"1"'})
    assert changed.status_code == 200 and changed.json()["price"] == 4
    assert changed.headers["etag"] == '"2"'
    assert client.get(f"{URL}/999", headers={"If-None-Match": "*"}).status_code == 404


def test_every_change_gets_a_new_etag(client: TestClient) -> None:
    created = client.post(URL, json={"name": "Mug", "price": 3})
    assert created.headers["etag"] == '"1"'
    path = created.headers["location"]
    assert client.get(path).headers["etag"] == '"1"'
    replaced = client.put(path, json={"name": "Mug", "price": 4})
    assert replaced.headers["etag"] == '"2"'
    assert client.get(path).headers["etag"] == '"2"'


def test_if_match_refuses_a_change_made_on_a_stale_copy(client: TestClient) -> None:
    """Two clients read version 1; the first one's change wins, the second gets a 412."""
    path = client.post(URL, json={"name": "Vase", "price": 3}).headers["location"]
    first = client.put(path, json={"name": "Vase", "price": 4}, headers={"If-Match": '"1"'})
    assert first.status_code == 200
    second = client.put(path, json={"name": "Vase", "price": 5}, headers={"If-Match": '"1"'})
    assert second.status_code == 412
    assert second.headers["content-type"] == "application/problem+json"
    assert client.get(path).json()["price"] == 4
    assert client.delete(path, headers={"If-Match": '"1"'}).status_code == 412
    assert client.delete(path, headers={"If-Match": 'W/"2"'}).status_code == 412  # weak: never
    assert client.delete(path, headers={"If-Match": '"7", "2"'}).status_code == 204


def test_if_match_any_or_none_changes_whatever_the_version(client: TestClient) -> None:
    path = client.post(URL, json={"name": "Bowl", "price": 3}).headers["location"]
    assert client.put(path, json={"name": "Bowl", "price": 4}).status_code == 200
    star = client.put(path, json={"name": "Bowl", "price": 5}, headers={"If-Match": "*"})
    assert star.status_code == 200
    missing = client.put(f"{URL}/999", json={"name": "X", "price": 1}, headers={"If-Match": '"1"'})
    assert missing.status_code == 404
    assert client.delete(f"{URL}/999", headers={"If-Match": '"1"'}).status_code == 404


def test_an_if_match_longer_than_its_documented_bound_is_a_422(client: TestClient) -> None:
    url = f"{URL}/{create(client, name='Kettle')['id']}"
    bounds = {
        (method, p["name"]): p["schema"]["anyOf"][0]["maxLength"]
        for method, operation in client.get("/openapi.json").json()["paths"][ITEM].items()
        for p in operation["parameters"]
        if p["name"] in ("if-match", "if-none-match")
    }
    assert set(bounds.values()) == {ETAGS_MAX_LENGTH}
    assert set(bounds) == {("get", "if-none-match"), ("put", "if-match"), ("delete", "if-match")}
    at_most = ", ".join(['"1"'] * (ETAGS_MAX_LENGTH // 5))[:ETAGS_MAX_LENGTH]
    too_long = ", ".join(['"1"'] * (ETAGS_MAX_LENGTH // 4))
    assert client.get(url, headers={"If-None-Match": at_most}).status_code == 304
    refused = client.get(url, headers={"If-None-Match": too_long})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["header", "if-none-match"]
    body = {"name": "Kettle", "price": 4}
    assert client.put(url, json=body, headers={"If-Match": too_long}).status_code == 422
    assert client.delete(url, headers={"If-Match": too_long}).status_code == 422
    assert client.put(url, json=body, headers={"If-Match": at_most}).status_code == 200


def test_the_etag_and_location_sent_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    item = paths[ITEM]
    documented = {
        "201": set(paths[URL]["post"]["responses"]["201"]["headers"]),
        "200": set(item["get"]["responses"]["200"]["headers"]),
        "304": set(item["get"]["responses"]["304"]["headers"]),
        "put 200": set(item["put"]["responses"]["200"]["headers"]),
    }
    created = client.post(URL, json={"name": "Teapot", "price": 3})
    path = created.headers["location"]
    sent = {
        "201": created,
        "200": client.get(path),
        "304": client.get(path, headers={"If-None-Match": "*"}),
        "put 200": client.put(path, json={"name": "Teapot", "price": 4}),
    }
    for answer, response in sent.items():
        assert "ETag" in documented[answer] and "etag" in response.headers, answer
    assert "Location" in documented["201"]
