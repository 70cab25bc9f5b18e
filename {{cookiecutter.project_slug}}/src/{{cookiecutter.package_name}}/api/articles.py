"""/api/v1/articles: create, list, get, replace and delete articles."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Response
{%- if cookiecutter.auth == "jwt" %}
from fastapi import Security
{%- endif %}

from ..domain.articles import (
    Article,
    ArticleIn,
    ArticleRepository,
    DuplicateArticleError,
    InMemoryArticleRepository,
)
from ..errors import Problem
from ..health import register_check
{%- if cookiecutter.auth == "api_key" %}
from ..security.api_keys import DENIED, require_principal
{%- elif cookiecutter.auth == "jwt" %}
from ..security.tokens import DENIED, require_principal
{%- endif %}
from ..security.rate_limit import RATE_LIMITED, rate_limit
from . import API_PREFIX
from .dependencies import PaginationDep


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    articles = InMemoryArticleRepository()
    register_check(app, "articles", articles.ping)
    yield {"articles": articles}


async def get_articles(request: Request) -> ArticleRepository:
    """The repository the lifespan opened (tests replace it through dependency_overrides)."""
    articles: ArticleRepository = request.state.articles
    return articles


ArticlesDep = Annotated[ArticleRepository, Depends(get_articles)]

ArticleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The article's id")]

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No article with that id"}}
CONFLICT: Responses = {409: {"model": Problem, "description": "An article with that name exists"}}
router = APIRouter(
    prefix=f"{API_PREFIX}/articles", tags=["articles"], lifespan=lifespan, responses=RATE_LIMITED
)


async def valid_article(article: ArticleIn) -> None:
    """The body, validated before the write limit counts the request: a 422 costs nothing."""


WRITE_LIMIT = Depends(rate_limit("rate_limit_write", after=valid_article))
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
async def create_article(
    article: ArticleIn, articles: ArticlesDep, request: Request, response: Response
) -> dict[str, Any]:
    try:
        row = await articles.add(article)
    except DuplicateArticleError:
        raise conflict(article) from None
    response.headers["Location"] = request.app.url_path_for("get_article", article_id=row["id"])
    return row


@router.get("", response_model=list[Article])
async def list_articles(articles: ArticlesDep, page: PaginationDep) -> list[dict[str, Any]]:
    return await articles.page(page.skip, page.limit)


@router.get("/{article_id}", response_model=Article, responses=NOT_FOUND)
async def get_article(article_id: ArticleId, articles: ArticlesDep) -> dict[str, Any]:
    row = await articles.get(article_id)
    if row is None:
        raise not_found(article_id)
    return row


{% if cookiecutter.auth == "none" -%}
@router.put(
    "/{article_id}",
    response_model=Article,
    responses={**NOT_FOUND, **CONFLICT},
    dependencies=[WRITE_LIMIT],
)
{% else -%}
@router.put(
    "/{article_id}",
    response_model=Article,
    responses={**NOT_FOUND, **CONFLICT, **DENIED},
    dependencies=WRITER,
)
{% endif -%}
async def replace_article(
    article_id: ArticleId, article: ArticleIn, articles: ArticlesDep
) -> dict[str, Any]:
    try:
        row = await articles.replace(article_id, article)
    except DuplicateArticleError:
        raise conflict(article) from None
    if row is None:
        raise not_found(article_id)
    return row


{% if cookiecutter.auth == "none" -%}
@router.delete("/{article_id}", status_code=204, responses=NOT_FOUND, dependencies=[DELETE_LIMIT])
{% else -%}
@router.delete(
    "/{article_id}", status_code=204, responses=NOT_FOUND | DENIED, dependencies=DELETER
)
{% endif -%}
async def delete_article(article_id: ArticleId, articles: ArticlesDep) -> None:
    if not await articles.delete(article_id):
        raise not_found(article_id)
