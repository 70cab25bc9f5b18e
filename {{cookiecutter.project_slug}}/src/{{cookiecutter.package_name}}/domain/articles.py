"""Articles: the example resource, its models and a repository behind a small interface."""

from collections.abc import Collection
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class ArticleIn(BaseModel):
    """What a client sends: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # No NUL character: PostgreSQL's text cannot hold one.
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$", examples=["Article 1"])
    price: float = Field(gt=0, le=1_000_000_000, allow_inf_nan=False, examples=[10.0])
    in_stock: bool = True


class Article(BaseModel):
    """What a client gets back: only these fields, whatever else the store keeps."""

    id: int
    name: str
    price: float
    in_stock: bool


class DuplicateArticleError(Exception):
    pass


class StaleArticleError(Exception):
    """The article changed since the client read it: its version is not one the client named."""


# Rows carry `version`, which every change increments (the ETag). A write given `versions`
# happens only if the row's version is one of them, else raises StaleArticleError; a write
# given None happens whatever the version.
Versions = Collection[int] | None


class ArticleRepository(Protocol):
    async def add(self, article: ArticleIn) -> dict[str, Any]: ...
    async def page(self, skip: int, limit: int) -> list[dict[str, Any]]: ...
    async def get(self, article_id: int) -> dict[str, Any] | None: ...

    async def replace(
        self, article_id: int, article: ArticleIn, versions: Versions = None
    ) -> dict[str, Any] | None: ...

    async def delete(self, article_id: int, versions: Versions = None) -> bool: ...


class InMemoryArticleRepository:
    """A process-local store for the example; swap it for a database behind the same methods.

    Rows keep `name_key`, the case-folded name used to refuse duplicates: an internal field that
    the `Article` response model keeps from ever reaching a client.
    """

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.next_id = 1

    def check_unique(self, name_key: str, article_id: int | None = None) -> None:
        for row in self.rows.values():
            if row["name_key"] == name_key and row["id"] != article_id:
                raise DuplicateArticleError(name_key)

    def check_version(self, article_id: int, versions: Versions) -> None:
        if versions is not None and self.rows[article_id]["version"] not in versions:
            raise StaleArticleError(article_id)

    async def add(self, article: ArticleIn) -> dict[str, Any]:
        name_key = article.name.casefold()
        self.check_unique(name_key)
        row = {"id": self.next_id, **article.model_dump(), "name_key": name_key, "version": 1}
        self.rows[self.next_id] = row
        self.next_id += 1
        return row

    async def page(self, skip: int, limit: int) -> list[dict[str, Any]]:
        return list(self.rows.values())[skip : skip + limit]

    async def get(self, article_id: int) -> dict[str, Any] | None:
        return self.rows.get(article_id)

    async def replace(
        self, article_id: int, article: ArticleIn, versions: Versions = None
    ) -> dict[str, Any] | None:
        if article_id not in self.rows:
            return None
        self.check_version(article_id, versions)
        name_key = article.name.casefold()
        self.check_unique(name_key, article_id)
        version = self.rows[article_id]["version"] + 1
        row = {"id": article_id, **article.model_dump(), "name_key": name_key, "version": version}
        self.rows[article_id] = row
        return row

    async def delete(self, article_id: int, versions: Versions = None) -> bool:
        if article_id not in self.rows:
            return False
        self.check_version(article_id, versions)
        del self.rows[article_id]
        return True

    async def ping(self) -> None:
        """Always usable; a database-backed repository would run a cheap query here."""
