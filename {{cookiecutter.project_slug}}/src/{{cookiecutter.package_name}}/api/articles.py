"""/api/v1/articles: create, list, get, replace and delete articles.

Every article has an ETag (its version). A PUT or DELETE that sends `If-Match` with it changes
the article only if nobody changed it since (else 412 Precondition Failed); one without
`If-Match` changes it whatever its version. A GET that sends `If-None-Match` with the current
ETag gets a bodiless 304 Not Modified.

The routes see the store as an ArticleRepository (`ArticlesDep`, domain/article_store.py),
announce each change through `ArticleEvents` (domain/article_events.py) and let in writers
through `requires` (security/access.py).
"""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response

from ..domain.article_events import EVENTS_RESPONSES, ArticleEvents, article_events
from ..domain.article_store import STORE_RESPONSES, ArticlesDep, lifespan
from ..domain.articles import (
    Article,
    ArticleIn,
    DuplicateArticleError,
    StaleArticleError,
    Versions,
)
from ..errors import Problem
from ..security.access import DENIED, requires
from ..security.rate_limit import RATE_LIMITED, RateLimitedRoute, rate_limit
from . import API_PREFIX
from .dependencies import PaginationDep

ArticleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The article's id")]
ETAGS_MAX_LENGTH = 1024  # a longer If-Match or If-None-Match is a 422
IfMatch = Annotated[
    str | None,
    Header(
        max_length=ETAGS_MAX_LENGTH,
        description="The article's ETag: change it only if it is still this one",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        max_length=ETAGS_MAX_LENGTH,
        description="The ETags the client holds: 304 if the article is still one",
    ),
]
ETAG = re.compile(r'(?<!W/)"(\d{1,18})"')  # strong ETags only: a weak one never matches
ANY_ETAG = re.compile(r'(?:W/)?"(\d{1,18})"')  # If-None-Match compares weakly (RFC 9110)

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No article with that id"}}
CONFLICT: Responses = {409: {"model": Problem, "description": "An article with that name exists"}}
STALE: Responses = {412: {"model": Problem, "description": "If-Match names an older version"}}
ETAG_SCHEMA = {"type": "string", "maxLength": 20}  # a version's digits, quoted
ETAG_HEADER = {"ETag": {"description": "The article's version", "schema": ETAG_SCHEMA}}
LOCATION = {"Location": {"description": "The new article's path", "schema": {"type": "string"}}}
NOT_MODIFIED: Responses = {
    304: {"description": "If-None-Match names the current ETag: no body", "headers": ETAG_HEADER}
}
CREATED: Responses = {201: {"description": "The new article", "headers": ETAG_HEADER | LOCATION}}
TAGGED: Responses = {200: {"description": "The article", "headers": ETAG_HEADER}}

router = APIRouter(
    prefix=f"{API_PREFIX}/articles",
    route_class=RateLimitedRoute,
    tags=["articles"],
    lifespan=lifespan,
    responses=RATE_LIMITED | STORE_RESPONSES | EVENTS_RESPONSES,  # the store or broker down: 503
)


async def valid_article(article: ArticleIn) -> None:
    """The body, validated before the write limit counts the request: a 422 costs nothing."""


WRITE_LIMIT = Depends(rate_limit("rate_limit_write", after=valid_article))
DELETE_LIMIT = Depends(rate_limit("rate_limit_write"))  # a delete has no body
# Writes need the articles:write scope, as security/access.py grants it (listed first: the
# write limit then counts per caller, not per address). Reads are open to all.
WRITER = [requires("articles:write"), WRITE_LIMIT]
DELETER = [requires("articles:write"), DELETE_LIMIT]
# The events are ready once the body is valid: a bad body is a 422 even with the broker down.
WriteEventsDep = Annotated[ArticleEvents, Depends(article_events(after=valid_article))]
DeleteEventsDep = Annotated[ArticleEvents, Depends(article_events())]


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


@router.post(
    "",
    status_code=201,
    response_model=Article,
    responses=CREATED | CONFLICT | DENIED,
    dependencies=WRITER,
)
async def create_article(
    article: ArticleIn,
    articles: ArticlesDep,
    events: WriteEventsDep,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    try:
        row = await articles.add(article)
    except DuplicateArticleError:
        raise conflict(article) from None
    await events.created(row)
    response.headers["Location"] = request.app.url_path_for("get_article", article_id=row["id"])
    response.headers["ETag"] = etag(row)
    return row


@router.get("", response_model=list[Article])
async def list_articles(articles: ArticlesDep, page: PaginationDep) -> list[dict[str, Any]]:
    return await articles.page(page.skip, page.limit)


@router.get("/{article_id}", response_model=Article, responses=TAGGED | NOT_FOUND | NOT_MODIFIED)
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


@router.put(
    "/{article_id}",
    response_model=Article,
    responses=TAGGED | NOT_FOUND | CONFLICT | STALE | DENIED,
    dependencies=WRITER,
)
async def replace_article(
    article_id: ArticleId,
    article: ArticleIn,
    articles: ArticlesDep,
    events: WriteEventsDep,
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
    await events.updated(row)
    response.headers["ETag"] = etag(row)
    return row


@router.delete(
    "/{article_id}", status_code=204, responses=NOT_FOUND | STALE | DENIED, dependencies=DELETER
)
async def delete_article(
    article_id: ArticleId, articles: ArticlesDep, events: DeleteEventsDep, if_match: IfMatch = None
) -> None:
    try:
        deleted = await articles.delete(article_id, versions(if_match))
    except StaleArticleError:
        raise stale(article_id) from None
    if not deleted:
        raise not_found(article_id)
    await events.deleted(article_id)
