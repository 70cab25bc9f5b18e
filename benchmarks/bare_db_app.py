"""The database variant's baseline: bare FastAPI reading an article from PostgreSQL the way the
baked service does, and nothing else.

The same query (`session.get` of the baked model), one session per request through `Depends`
(commit on success), an engine with the service's pool settings and the same connection options,
the same id constraint and response model. No middleware, no access log, no error handlers, no
metrics or spans on the engine. BENCH_DATABASE_URL names the database (database.py sets it).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from my_service.domain.article_rows import ArticleRow


class Article(BaseModel):
    id: int
    name: str
    price: float
    in_stock: bool


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    engine = create_async_engine(
        os.environ["BENCH_DATABASE_URL"],
        pool_size=5,  # the service's defaults (settings.py)
        max_overflow=10,
        pool_timeout=5.0,
        pool_pre_ping=True,
        connect_args={"timeout": 5.0, "server_settings": {"statement_timeout": "5000"}, "command_timeout": 6.0},
    )
    try:
        yield {"sessions": async_sessionmaker(engine, expire_on_commit=False)}
    finally:
        await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.state.sessions
    async with sessions.begin() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ArticleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The article's id")]
router = APIRouter(prefix="/api/v1/articles", lifespan=lifespan)


@router.get("/{article_id}", response_model=Article)
async def get_article(article_id: ArticleId, session: SessionDep) -> dict[str, Any]:
    row = await session.get(ArticleRow, article_id)
    if row is None:
        raise HTTPException(404, f"Article {article_id} does not exist")
    # The service's repository returns the version too (for the ETag); the response model drops it.
    return {"id": row.id, "name": row.name, "price": row.price, "in_stock": row.in_stock, "version": row.version}


app = FastAPI()
app.include_router(router)


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
