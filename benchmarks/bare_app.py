"""The baseline: bare FastAPI doing the baked service's articles work, and nothing else.

The routes are written the way the service writes them: an APIRouter included in the app, the
repository made in the router's lifespan and reached through `Depends` from `request.state`, the
id checked by the same `Path` constraint, the same pagination dependency, the same response model,
a 404 raised as HTTPException. No middleware, no access log, no error handlers of its own.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from pydantic import BaseModel


class Article(BaseModel):
    id: int
    name: str
    price: float
    in_stock: bool


class Articles:
    """The service's in-memory repository, as much of it as these routes use. Rows keep the
    case-folded name, as the service's do, for the response model to drop."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {
            1: {"id": 1, "name": "Article 1", "price": 10.0, "in_stock": True, "name_key": "article 1"}
        }

    async def get(self, article_id: int) -> dict[str, Any] | None:
        return self.rows.get(article_id)

    async def page(self, skip: int, limit: int) -> list[dict[str, Any]]:
        return list(self.rows.values())[skip : skip + limit]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"articles": Articles()}


async def get_articles(request: Request) -> Articles:
    articles: Articles = request.state.articles
    return articles


@dataclass(frozen=True)
class Pagination:
    skip: int
    limit: int


async def pagination(
    skip: Annotated[int, Query(ge=0, le=10_000, description="Items to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Items to return")] = 20,
) -> Pagination:
    return Pagination(skip=skip, limit=limit)


ArticlesDep = Annotated[Articles, Depends(get_articles)]
PaginationDep = Annotated[Pagination, Depends(pagination)]
ArticleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The article's id")]
router = APIRouter(prefix="/api/v1/articles", lifespan=lifespan)


@router.get("", response_model=list[Article])
async def list_articles(articles: ArticlesDep, page: PaginationDep) -> list[dict[str, Any]]:
    return await articles.page(page.skip, page.limit)


@router.get("/{article_id}", response_model=Article)
async def get_article(article_id: ArticleId, articles: ArticlesDep) -> dict[str, Any]:
    row = await articles.get(article_id)
    if row is None:
        raise HTTPException(404, f"Article {article_id} does not exist")
    return row


app = FastAPI()
app.include_router(router)  # first, as in the service: the API is the hot path


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
