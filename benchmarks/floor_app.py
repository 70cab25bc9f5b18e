"""Bare FastAPI carrying what the service's answer carries, and nothing computed: the floor.

`bare_app.py`'s articles route, plus the two things the service's contract puts on this route
that cost inside FastAPI and uvicorn rather than in the service's own code: the `If-None-Match`
header read through FastAPI's `Header()` (declared as api/articles.py declares it) with the
route's `Response` for its ETag, and the response headers the service sends on every answer (the
bake's own security headers, a request id, the rate limit's three, `Vary`), appended as constants
by one pure ASGI middleware. No logging, counting, limiting or tracing: what `make bench --layers`
reads as the part of the service's cost that any implementation of its features would pay with
this FastAPI and this uvicorn.
"""

from typing import Annotated, Any

from bare_app import Article, ArticleId, ArticlesDep, lifespan
from fastapi import APIRouter, FastAPI, Header, HTTPException, Response
from my_service.security.headers import api_headers
from my_service.settings import Settings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SETTINGS = Settings(_env_file=None, environment="production", metrics_token="m" * 40)
HEADERS = [
    *api_headers(SETTINGS),
    (b"x-request-id", b"c87eb12bd9b7a9cd5f0ab196305a5fee"),
    (b"x-ratelimit-limit", b"100000000"),
    (b"x-ratelimit-remaining", b"99999998"),
    (b"x-ratelimit-reset", b"1796575036"),
    (b"vary", b"Origin"),
]
IfNoneMatch = Annotated[str | None, Header(max_length=1024, description="The ETags held")]


class ConstantHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


router = APIRouter(prefix="/api/v1/articles", lifespan=lifespan)


@router.get("/{article_id}", response_model=Article)
async def get_article(
    article_id: ArticleId,
    articles: ArticlesDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> dict[str, Any]:
    row = await articles.get(article_id)
    if row is None:
        raise HTTPException(404, f"Article {article_id} does not exist")
    response.headers["ETag"] = '"1"'
    return row


app = FastAPI()
app.add_middleware(ConstantHeaders)
app.include_router(router)


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
