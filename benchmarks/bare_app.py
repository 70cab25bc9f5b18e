"""The baseline: bare FastAPI serving the same route and response as the baked service."""

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


class Article(BaseModel):
    id: int
    name: str
    price: float
    in_stock: bool


ARTICLES = {1: {"id": 1, "name": "Article 1", "price": 10.0, "in_stock": True}}
app = FastAPI()


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/articles/{article_id}", response_model=Article)
async def get_article(article_id: int) -> dict[str, object]:
    if article_id not in ARTICLES:
        raise HTTPException(404)
    return ARTICLES[article_id]
