"""Where the routes find the articles: in this process's memory, made by the router's lifespan.

The routes depend on `ArticlesDep`, an ArticleRepository: tests replace `get_articles` through
dependency_overrides, and a database is another `get_articles` (see InMemoryArticleRepository).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from ..health import register_check
from .articles import ArticleRepository, InMemoryArticleRepository

STORE_RESPONSES: dict[int | str, dict[str, Any]] = {}  # memory is never down: nothing to document


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    articles = InMemoryArticleRepository()
    register_check(app, "articles", articles.ping)
    yield {"articles": articles}


async def get_articles(request: Request) -> ArticleRepository:
    """The repository the lifespan made."""
    articles: ArticleRepository = request.state.articles
    return articles


ArticlesDep = Annotated[ArticleRepository, Depends(get_articles)]
