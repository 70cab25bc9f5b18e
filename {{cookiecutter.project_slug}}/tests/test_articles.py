"""The example articles API: validated in and sanitised out."""

{% if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" -%}
from typing import Any, cast
{%- else -%}
from typing import Any
{%- endif %}

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
{%- if cookiecutter.database != "none" %}
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
{%- endif %}

from {{ cookiecutter.package_name }}.domain.article_store import get_articles
{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.package_name }}.domain.article_rows import (
    ArticleRow,
    SqlArticleRepository,
)
from {{ cookiecutter.package_name }}.domain.articles import (
    ArticleIn,
    DuplicateArticleError,
    InMemoryArticleRepository,
)
{%- else %}
from {{ cookiecutter.package_name }}.domain.articles import InMemoryArticleRepository
{%- endif %}
from {{ cookiecutter.package_name }}.main import create_app
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" %}
from {{ cookiecutter.package_name }}.messaging.broker import Broker
from {{ cookiecutter.package_name }}.messaging.publisher import Publisher, get_events
{%- endif %}
from {{ cookiecutter.package_name }}.settings import Settings

{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.package_name }}.schema import migrations
from .conftest import Server, empty_tables, run_async
from .test_database import alembic, upgrade
{%- elif cookiecutter.messaging == "rabbitmq" %}
from .conftest import TEST_BROKER_URL, Server
{%- else %}
from .conftest import Server
{%- endif %}
{%- if cookiecutter.auth != "none" %}
from .credentials import auth_headers
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" %}
from .fake_broker import FakeBroker
{%- endif %}

URL = "/api/v1/articles"


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post(URL, json={"name": "Article 1", "price": 10.0, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_assigns_an_id_and_points_to_the_article(client: TestClient) -> None:
    response = client.post(URL, json={"name": "Keyboard", "price": 49.9})
    assert response.status_code == 201
    assert response.json() == {"id": 1, "name": "Keyboard", "price": 49.9, "in_stock": True}
    assert response.headers["location"] == f"{URL}/1"
    assert client.get(response.headers["location"]).json()["name"] == "Keyboard"


def test_the_repository_is_replaced_through_dependency_overrides(app: FastAPI) -> None:
    """Routes get their repository through Depends(get_articles): a test swaps it."""
    mine = InMemoryArticleRepository()
    app.dependency_overrides[get_articles] = lambda: mine
    with TestClient(app) as client:
{%- if cookiecutter.auth != "none" %}
        client.headers.update(auth_headers(app.state.settings))
{%- endif %}
        create(client, name="Only in mine")
    assert [row["name"] for row in mine.rows.values()] == ["Only in mine"]
{%- if cookiecutter.database != "none" %}


async def stored_name_key(url: str, article_id: int) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            name_key: str | None = await connection.scalar(
                ArticleRow.__table__.select()
                .with_only_columns(ArticleRow.name_key)
                .where(ArticleRow.id == article_id)
            )
            return name_key
    finally:
        await engine.dispose()


def test_a_stored_internal_field_never_reaches_the_client(
    client: TestClient, database_url: str
) -> None:
    created = create(client, name="Screen")
    returned = client.get(f"{URL}/{created['id']}").json()
    assert run_async(stored_name_key(database_url, created["id"])) == "screen"
    assert set(returned) == {"id", "name", "price", "in_stock"}


def test_articles_wait_for_their_migration_with_a_503_then_work_unrestarted(
    client: TestClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_async(empty_tables(database_url, migrated=False))
    for response in [client.get(URL), client.post(URL, json={"name": "Early", "price": 1})]:
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
        assert response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        assert detail.startswith("The database has no migrations applied; this release needs")
        assert migrations().get_heads()[0] in detail and "`make migrate`" in detail
    alembic(database_url, monkeypatch, upgrade)
    assert client.post(URL, json={"name": "Migrated", "price": 1}).status_code == 201
    assert [article["name"] for article in client.get(URL).json()] == ["Migrated"]


NO_PRICE: Any = None  # refused by ArticleIn's validation, and by the column's NOT NULL


async def add(url: str, article: ArticleIn) -> None:
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await SqlArticleRepository(session).add(article)
    finally:
        await engine.dispose()


def test_only_the_unique_name_constraint_makes_a_duplicate(database_url: str) -> None:
    """Any other integrity error is a bug, not a 409 (here a price the model would refuse)."""
    run_async(add(database_url, ArticleIn(name="Cable", price=1)))
    with pytest.raises(DuplicateArticleError):
        run_async(add(database_url, ArticleIn(name="CABLE", price=2)))
    with pytest.raises(IntegrityError):
        run_async(add(database_url, ArticleIn.model_construct(name="Plug", price=NO_PRICE)))
{%- else %}


def test_a_stored_internal_field_never_reaches_the_client(client: TestClient) -> None:
    created = create(client, name="Screen")
    stored = client.app_state["articles"].rows[created["id"]]
    returned = client.get(f"{URL}/{created['id']}").json()
    assert stored["name_key"] == "screen"
    assert set(returned) == {"id", "name", "price", "in_stock"}
{%- endif %}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "", "price": 1}, "name"),
        ({"name": "x" * 201, "price": 1}, "name"),
        ({"name": "Cable", "price": 0}, "price"),
        ({"name": "Cable", "price": -3}, "price"),
        ({"name": "Cable", "price": "cheap"}, "price"),
        ({"name": "Cable"}, "price"),
        ({"name": "Cable", "price": 1, "supplier": "ACME"}, "supplier"),
    ],
)
def test_invalid_articles_are_refused_naming_the_field(
    client: TestClient, payload: dict[str, Any], field: str
) -> None:
    response = client.post(URL, json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["loc"] for error in response.json()["errors"]] == [["body", field]]


def test_a_non_finite_price_is_refused(client: TestClient) -> None:
    response = client.post(
        URL,
        content=b'{"name": "Cable", "price": Infinity}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


def test_a_duplicate_name_is_a_409_whatever_its_case(client: TestClient) -> None:
    create(client, name="Lamp")
    response = client.post(URL, json={"name": "LAMP", "price": 5})
    assert response.status_code == 409
    assert response.json()["detail"] == "An article named 'LAMP' already exists"


def test_list_pages_with_skip_and_limit(client: TestClient) -> None:
    for number in range(1, 6):
        create(client, name=f"Article {number}", price=number * 10.0)
    names = [a["name"] for a in client.get(URL, params={"skip": 1, "limit": 2}).json()]
    assert names == ["Article 2", "Article 3"]
    assert len(client.get(URL).json()) == 5


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"skip": -1}])
def test_pagination_is_bounded(client: TestClient, params: dict[str, int]) -> None:
    assert client.get(URL, params=params).status_code == 422


def test_get_a_missing_article_is_a_404_problem(client: TestClient) -> None:
    response = client.get(f"{URL}/999")
    assert response.status_code == 404
    assert response.json()["detail"] == "Article 999 does not exist"
    assert client.get(f"{URL}/0").status_code == 422


def test_replace_updates_every_field(client: TestClient) -> None:
    created = create(client, name="Desk")
    response = client.put(
        f"{URL}/{created['id']}", json={"name": "Standing desk", "price": 300, "in_stock": False}
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": created["id"],
        "name": "Standing desk",
        "price": 300.0,
        "in_stock": False,
    }


def test_replace_refuses_a_missing_article_and_a_taken_name(client: TestClient) -> None:
    create(client, name="Chair")
    second = create(client, name="Stool")
    assert client.put(f"{URL}/999", json={"name": "X", "price": 1}).status_code == 404
    taken = client.put(f"{URL}/{second['id']}", json={"name": "chair", "price": 1})
    assert taken.status_code == 409
    same = client.put(f"{URL}/{second['id']}", json={"name": "STOOL", "price": 2})
    assert same.status_code == 200


def test_delete_removes_the_article(client: TestClient) -> None:
    created = create(client, name="Pen")
    assert client.delete(f"{URL}/{created['id']}").status_code == 204
    assert client.get(f"{URL}/{created['id']}").status_code == 404
    assert client.delete(f"{URL}/{created['id']}").status_code == 404


def test_development_takes_more_than_ten_writes_a_minute(client: TestClient) -> None:
    """Trying the API out in /docs is not cut short by the write limit."""
    for number in range(12):
        create(client, name=f"Article {number}")  # each a 201


def test_refused_writes_do_not_count_against_the_write_limit(settings: Settings) -> None:
    """The body is checked before the write limit counts the request: a 422 or 415 is free."""
    app = create_app(settings.model_copy(update={"rate_limit_write": "2/minute"}))
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" %}
    publisher = Publisher(settings, cast(Broker, FakeBroker()))
    app.dependency_overrides[get_events] = lambda: publisher
{%- endif %}
    with TestClient(app) as client:
{%- if cookiecutter.auth != "none" %}
        client.headers.update(auth_headers(settings))
{%- endif %}
        form = {"content-type": "application/x-www-form-urlencoded"}
        refused = [
            client.post(URL, json={"name": "", "price": 1}),
            client.post(URL, content=b"name=Cable&price=1", headers=form),
            client.put(f"{URL}/1", json={"name": "Cable"}),
        ]
        written = [client.post(URL, json={"name": f"A{n}", "price": 1}) for n in range(3)]
    assert [response.status_code for response in refused] == [422, 415, 422]
    assert [response.status_code for response in written] == [201, 201, 429]


def test_readiness_includes_the_article_store(client: TestClient) -> None:
{%- if cookiecutter.database != "none" %}
    assert client.get("/health/ready").json()["checks"]["database"]["status"] == "up"
{%- else %}
    assert client.get("/health/ready").json()["checks"]["articles"]["status"] == "up"
{%- endif %}


def test_the_real_server_creates_and_lists_articles(server: Server) -> None:
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" %}
    if not TEST_BROKER_URL:
        pytest.skip("its writes need a RabbitMQ: set TEST_BROKER_URL (CI does)")
{%- endif %}
    created = httpx2.post(
        f"{server.url}{URL}", json={"name": "Served", "price": 1.5}, headers=server.headers
    )
    assert created.status_code == 201
    listed = httpx2.get(f"{server.url}{URL}").json()
    assert {"id": created.json()["id"], "name": "Served", "price": 1.5, "in_stock": True} in listed
