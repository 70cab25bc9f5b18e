"""Articles in the database: the table (a typed SQLAlchemy model) and the repository over one
request's session (db.SessionDep). Changing the model needs a migration: `make migration`."""

from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Integer,
    String,
    delete,
    exc,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, unique_violation
from .articles import ArticleIn, DuplicateArticleError, StaleArticleError, Versions

# BIGINT on PostgreSQL; SQLite numbers rows itself only in an INTEGER primary key (64-bit too).
Id = BigInteger().with_variant(Integer(), "sqlite")


# The table and column of the unique constraint that refuses a second article of one name.
UNIQUE_NAME = ("articles", "name_key")


def duplicate_name(error: exc.IntegrityError) -> bool:
    """That constraint, by its name: any other integrity error is a bug (a logged 500)."""
    return unique_violation(error, *UNIQUE_NAME)


class ArticleRow(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The case-folded name: its unique constraint refuses duplicates whatever their case, even
    # two created at the same instant (casefold() can triple a name's length).
    name_key: Mapped[str] = mapped_column(String(600), unique=True)
    price: Mapped[float] = mapped_column(Double)  # the same column type in SQLAlchemy 2.0 and 2.1
    in_stock: Mapped[bool]
    version: Mapped[int] = mapped_column(default=1)  # incremented by every change: the ETag


def as_dict(row: ArticleRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "price": row.price,
        "in_stock": row.in_stock,
        "version": row.version,
    }


def values(article: ArticleIn) -> dict[str, Any]:
    return {**article.model_dump(), "name_key": article.name.casefold()}


class SqlArticleRepository:
    """The articles of one request's session; the session's owner commits or rolls back."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, article: ArticleIn) -> dict[str, Any]:
        row = ArticleRow(**values(article), version=1)
        self.session.add(row)
        try:
            await self.session.flush()  # the constraint, not a prior read, refuses a duplicate
        except exc.IntegrityError as error:
            if duplicate_name(error):
                raise DuplicateArticleError(article.name) from None
            raise
        return as_dict(row)

    async def page(self, skip: int, limit: int) -> list[dict[str, Any]]:
        rows = await self.session.scalars(
            select(ArticleRow).order_by(ArticleRow.id).offset(skip).limit(limit)
        )
        return [as_dict(row) for row in rows]

    async def get(self, article_id: int) -> dict[str, Any] | None:
        row = await self.session.get(ArticleRow, article_id)
        return None if row is None else as_dict(row)

    async def replace(
        self, article_id: int, article: ArticleIn, versions: Versions = None
    ) -> dict[str, Any] | None:
        # One statement: another writer cannot slip between the version check and the change.
        statement = (
            update(ArticleRow)
            .where(*matching(article_id, versions))
            .values(**values(article), version=ArticleRow.version + 1)
            .returning(ArticleRow)
            .execution_options(populate_existing=True)  # not the session's older copy
        )
        try:
            row = (await self.session.scalars(statement)).one_or_none()
        except exc.IntegrityError as error:
            if duplicate_name(error):
                raise DuplicateArticleError(article.name) from None
            raise
        if row is None:
            await self.refuse_if_stale(article_id)
            return None
        return as_dict(row)

    async def delete(self, article_id: int, versions: Versions = None) -> bool:
        statement = delete(ArticleRow).where(*matching(article_id, versions))
        deleted = await self.session.scalars(statement.returning(ArticleRow.id))
        if deleted.first() is None:
            await self.refuse_if_stale(article_id)
            return False
        return True

    async def refuse_if_stale(self, article_id: int) -> None:
        """After a write that matched no row: the article exists, so its version did not match."""
        if await self.session.scalar(select(ArticleRow.id).where(ArticleRow.id == article_id)):
            raise StaleArticleError(article_id)


def matching(article_id: int, versions: Versions) -> list[ColumnElement[bool]]:
    conditions = [ArticleRow.id == article_id]
    if versions is not None:
        conditions.append(ArticleRow.version.in_(list(versions)))
    return conditions
