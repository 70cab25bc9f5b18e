"""/api/v1/articles: create, list, get, replace and delete articles.

Every article has an ETag (its version). A PUT or DELETE that sends `If-Match` with it changes
the article only if nobody changed it since (else 412 Precondition Failed); one without
`If-Match` changes it whatever its version, as before: existing clients keep working. A GET
that sends `If-None-Match` with the current ETag gets a bodiless 304 Not Modified.
"""

import re
{%- if cookiecutter.database == "none" %}
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
{%- endif %}
from typing import Annotated, Any

{%- if cookiecutter.database == "none" %}
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Request, Response
{%- else %}
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
from fastapi import Security
{%- endif %}

{%- if cookiecutter.database != "none" %}

from ..db import DATABASE_RESPONSES, SessionDep
from ..domain.article_rows import SqlArticleRepository
{%- endif %}
from ..domain.articles import (
    Article,
    ArticleIn,
    ArticleRepository,
    DuplicateArticleError,
{%- if cookiecutter.database == "none" %}
    InMemoryArticleRepository,
{%- endif %}
    StaleArticleError,
    Versions,
)
from ..errors import Problem
{%- if cookiecutter.messaging == "rabbitmq" %}
from ..messaging.events import article_event
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database != "none" %}
from ..messaging.outbox import EventsDep
{%- elif cookiecutter.messaging == "rabbitmq" %}
from ..messaging.publisher import BROKER_RESPONSES, EventsDep, Publisher, ready_publisher
{%- endif %}
{%- if cookiecutter.database == "none" %}
from ..health import register_check
{%- endif %}
{%- if cookiecutter.auth == "api_key" %}
from ..security.api_keys import DENIED, require_principal
{%- elif cookiecutter.auth == "jwt" %}
from ..security.tokens import DENIED, require_principal
{%- endif %}
from ..security.rate_limit import RATE_LIMITED, rate_limit
from . import API_PREFIX
from .dependencies import PaginationDep
{%- if cookiecutter.database == "none" %}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    articles = InMemoryArticleRepository()
    register_check(app, "articles", articles.ping)
    yield {"articles": articles}


async def get_articles(request: Request) -> ArticleRepository:
    """The repository the lifespan opened (tests replace it through dependency_overrides)."""
    articles: ArticleRepository = request.state.articles
    return articles
{%- else %}


async def get_articles(session: SessionDep) -> ArticleRepository:
    """The articles in this request's session (tests replace it through dependency_overrides)."""
    return SqlArticleRepository(session)
{%- endif %}


ArticlesDep = Annotated[ArticleRepository, Depends(get_articles)]
ArticleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The article's id")]
IfMatch = Annotated[
    str | None, Header(description="The article's ETag: change it only if it is still this one")
]
IfNoneMatch = Annotated[
    str | None, Header(description="The ETags the client holds: 304 if the article is still one")
]
ETAG = re.compile(r'(?<!W/)"(\d{1,18})"')  # strong ETags only: a weak one never matches
ANY_ETAG = re.compile(r'(?:W/)?"(\d{1,18})"')  # If-None-Match compares weakly (RFC 9110)

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No article with that id"}}
CONFLICT: Responses = {409: {"model": Problem, "description": "An article with that name exists"}}
STALE: Responses = {412: {"model": Problem, "description": "If-Match names an older version"}}
NOT_MODIFIED: Responses = {304: {"description": "If-None-Match names the current ETag: no body"}}
{%- if cookiecutter.database == "none" and cookiecutter.messaging == "rabbitmq" %}
router = APIRouter(
    prefix=f"{API_PREFIX}/articles",
    tags=["articles"],
    lifespan=lifespan,
    responses=RATE_LIMITED | BROKER_RESPONSES,  # writes: the broker down is a 503
)
{%- elif cookiecutter.database == "none" %}
router = APIRouter(
    prefix=f"{API_PREFIX}/articles", tags=["articles"], lifespan=lifespan, responses=RATE_LIMITED
)
{%- else %}
router = APIRouter(
    prefix=f"{API_PREFIX}/articles",
    tags=["articles"],
    responses=RATE_LIMITED | DATABASE_RESPONSES,
)
{%- endif %}


async def valid_article(article: ArticleIn) -> None:
    """The body, validated before the write limit counts the request: a 422 costs nothing."""


WRITE_LIMIT = Depends(rate_limit("rate_limit_write", after=valid_article))
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" %}
# The broker is checked once the body is valid: a bad body is a 422 even with the broker down.
ArticleEventsDep = Annotated[Publisher, Depends(ready_publisher(after=valid_article))]
{%- elif cookiecutter.messaging == "rabbitmq" %}
ArticleEventsDep = EventsDep
{%- endif %}
DELETE_LIMIT = Depends(rate_limit("rate_limit_write"))  # a delete has no body
{%- if cookiecutter.auth == "api_key" %}
# Reads are open to all; writes need a valid API key (listed first: the write limit then
# counts per caller, not per address).
WRITER = [Depends(require_principal), WRITE_LIMIT]
DELETER = [Depends(require_principal), DELETE_LIMIT]
{%- elif cookiecutter.auth == "jwt" %}
# Reads are open to all; writes need a token with the articles:write scope (listed first: the
# write limit then counts per caller, not per address).
WRITER = [Security(require_principal, scopes=["articles:write"]), WRITE_LIMIT]
DELETER = [Security(require_principal, scopes=["articles:write"]), DELETE_LIMIT]
{%- endif %}


def not_found(article_id: int) -> HTTPException:
    return HTTPException(404, f"Article {article_id} does not exist")


def conflict(article: ArticleIn) -> HTTPException:
    return HTTPException(409, f"An article named {article.name!r} already exists")


def stale(article_id: int) -> HTTPException:
    return HTTPException(412, f"Article {article_id} has changed; GET it again for its ETag")


def etag(row: dict[str, Any]) -> str:
    return f'"{row["version"]}"'


def unchanged(row: dict[str, Any], if_none_match: str | None) -> bool:
    """Whether If-None-Match names this version (weakly) or is '*'."""
    if if_none_match is None:
        return False
    held = if_none_match.strip() == "*" or row["version"] in {
        int(version) for version in ANY_ETAG.findall(if_none_match)
    }
    return held


def versions(if_match: str | None) -> Versions:
    """The versions If-Match names: None (any) without the header or with '*'."""
    if if_match is None or if_match.strip() == "*":
        return None
    return {int(version) for version in ETAG.findall(if_match)}


{% if cookiecutter.auth == "none" -%}
@router.post(
    "",
    status_code=201,
    response_model=Article,
    responses=CONFLICT,
    dependencies=[WRITE_LIMIT],
)
{% else -%}
@router.post(
    "",
    status_code=201,
    response_model=Article,
    responses=CONFLICT | DENIED,
    dependencies=WRITER,
)
{% endif -%}
{%- if cookiecutter.messaging == "rabbitmq" -%}
async def create_article(
    article: ArticleIn,
    articles: ArticlesDep,
    events: ArticleEventsDep,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    try:
        row = await articles.add(article)
    except DuplicateArticleError:
        raise conflict(article) from None
    await events.add(article_event("created", row))
{%- else -%}
async def create_article(
    article: ArticleIn, articles: ArticlesDep, request: Request, response: Response
) -> dict[str, Any]:
    try:
        row = await articles.add(article)
    except DuplicateArticleError:
        raise conflict(article) from None
{%- endif %}
    response.headers["Location"] = request.app.url_path_for("get_article", article_id=row["id"])
    response.headers["ETag"] = etag(row)
    return row


@router.get("", response_model=list[Article])
async def list_articles(articles: ArticlesDep, page: PaginationDep) -> list[dict[str, Any]]:
    return await articles.page(page.skip, page.limit)


@router.get("/{article_id}", response_model=Article, responses={**NOT_FOUND, **NOT_MODIFIED})
async def get_article(
    article_id: ArticleId,
    articles: ArticlesDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> dict[str, Any] | Response:
    row = await articles.get(article_id)
    if row is None:
        raise not_found(article_id)
    if unchanged(row, if_none_match):
        return Response(status_code=304, headers={"ETag": etag(row)})
    response.headers["ETag"] = etag(row)
    return row


{% if cookiecutter.auth == "none" -%}
@router.put(
    "/{article_id}",
    response_model=Article,
    responses={**NOT_FOUND, **CONFLICT, **STALE},
    dependencies=[WRITE_LIMIT],
)
{% else -%}
@router.put(
    "/{article_id}",
    response_model=Article,
    responses={**NOT_FOUND, **CONFLICT, **STALE, **DENIED},
    dependencies=WRITER,
)
{% endif -%}
async def replace_article(
    article_id: ArticleId,
    article: ArticleIn,
    articles: ArticlesDep,
{%- if cookiecutter.messaging == "rabbitmq" %}
    events: ArticleEventsDep,
{%- endif %}
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    try:
        row = await articles.replace(article_id, article, versions(if_match))
    except DuplicateArticleError:
        raise conflict(article) from None
    except StaleArticleError:
        raise stale(article_id) from None
    if row is None:
        raise not_found(article_id)
{%- if cookiecutter.messaging == "rabbitmq" %}
    await events.add(article_event("updated", row))
{%- endif %}
    response.headers["ETag"] = etag(row)
    return row


{% if cookiecutter.auth == "none" -%}
@router.delete(
    "/{article_id}", status_code=204, responses=NOT_FOUND | STALE, dependencies=[DELETE_LIMIT]
)
{% else -%}
@router.delete(
    "/{article_id}", status_code=204, responses=NOT_FOUND | STALE | DENIED, dependencies=DELETER
)
{% endif -%}
{%- if cookiecutter.messaging == "rabbitmq" -%}
async def delete_article(
    article_id: ArticleId, articles: ArticlesDep, events: EventsDep, if_match: IfMatch = None
) -> None:
{%- else -%}
async def delete_article(
    article_id: ArticleId, articles: ArticlesDep, if_match: IfMatch = None
) -> None:
{%- endif %}
    try:
        deleted = await articles.delete(article_id, versions(if_match))
    except StaleArticleError:
        raise stale(article_id) from None
    if not deleted:
        raise not_found(article_id)
{%- if cookiecutter.messaging == "rabbitmq" %}
    await events.add(article_event("deleted", {"id": article_id}))
{%- endif %}
