"""Where the routes find the articles: the table, through this request's session (db.SessionDep).

The routes depend on `ArticlesDep`, an ArticleRepository: tests replace `get_articles` through
dependency_overrides, and another store is another `get_articles`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from ..db import SessionDep
from ..db_errors import DATABASE_RESPONSES
from .article_rows import SqlArticleRepository
from .articles import ArticleRepository

STORE_RESPONSES = DATABASE_RESPONSES  # what a route using the store documents: the database down


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Nothing to open for the articles: the app's lifespan opens the database (main.py)."""
    yield {}


async def get_articles(session: SessionDep) -> ArticleRepository:
    """The articles in this request's session."""
    return SqlArticleRepository(session)


ArticlesDep = Annotated[ArticleRepository, Depends(get_articles)]
