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
from ..security.rate_limit import rate_limit
from .dependencies import PaginationDep


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    repository = InMemoryArticleRepository()
    register_check(app, "articles", repository.ping)
    yield {"article_repository": repository}


async def get_repository(request: Request) -> ArticleRepository:
    repository: ArticleRepository = request.state.article_repository
    return repository


RepositoryDep = Annotated[ArticleRepository, Depends(get_repository)]
ArticleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The article's id")]

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No article with that id"}}
CONFLICT: Responses = {409: {"model": Problem, "description": "An article with that name exists"}}
router = APIRouter(prefix="/articles", tags=["articles"], lifespan=lifespan)
{%- if cookiecutter.auth == "api_key" %}
# Reads are open to all; writes need a valid API key.
WRITER = [Depends(require_principal)]
{%- elif cookiecutter.auth == "jwt" %}
# Reads are open to all; writes need a token with the articles:write scope.
WRITER = [Security(require_principal, scopes=["articles:write"])]
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
    dependencies=[Depends(rate_limit("rate_limit_write"))],
)
{% else -%}
@router.post(
    "",
    status_code=201,
    response_model=Article,
    responses=CONFLICT | DENIED,
    # The writer first: the write limit then counts per caller, not per address.
    dependencies=[*WRITER, Depends(rate_limit("rate_limit_write"))],
)
{% endif -%}
async def create_article(
    article: ArticleIn, repository: RepositoryDep, request: Request, response: Response
) -> dict[str, Any]:
    try:
        row = await repository.add(article)
    except DuplicateArticleError:
        raise conflict(article) from None
    response.headers["Location"] = request.app.url_path_for("get_article", article_id=row["id"])
    return row


@router.get("", response_model=list[Article])
async def list_articles(repository: RepositoryDep, page: PaginationDep) -> list[dict[str, Any]]:
    return await repository.page(page.skip, page.limit)


@router.get("/{article_id}", response_model=Article, responses=NOT_FOUND)
async def get_article(article_id: ArticleId, repository: RepositoryDep) -> dict[str, Any]:
    row = await repository.get(article_id)
    if row is None:
        raise not_found(article_id)
    return row


{% if cookiecutter.auth == "none" -%}
@router.put("/{article_id}", response_model=Article, responses={**NOT_FOUND, **CONFLICT})
{% else -%}
@router.put(
    "/{article_id}",
    response_model=Article,
    responses={**NOT_FOUND, **CONFLICT, **DENIED},
    dependencies=WRITER,
)
{% endif -%}
async def replace_article(
    article_id: ArticleId, article: ArticleIn, repository: RepositoryDep
) -> dict[str, Any]:
    try:
        row = await repository.replace(article_id, article)
    except DuplicateArticleError:
        raise conflict(article) from None
    if row is None:
        raise not_found(article_id)
    return row


{% if cookiecutter.auth == "none" -%}
@router.delete("/{article_id}", status_code=204, responses=NOT_FOUND)
{% else -%}
@router.delete("/{article_id}", status_code=204, responses=NOT_FOUND | DENIED, dependencies=WRITER)
{% endif -%}
async def delete_article(article_id: ArticleId, repository: RepositoryDep) -> None:
    if not await repository.delete(article_id):
        raise not_found(article_id)
