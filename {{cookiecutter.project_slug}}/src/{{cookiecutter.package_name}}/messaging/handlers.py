"""What the worker does with each event. The example only checks what it receives: replace
`handle` with your own work (update a search index, send an e-mail, call another service).
{%- if cookiecutter.database != "none" %}
It runs in the transaction that records the message as processed: write through `session`, and
your changes and that record commit together, exactly once.
{%- else %}
It may run twice for one message after a worker restart (see the README): keep it idempotent.
{%- endif %}
A handler that raises is retried with backoff, then dead-lettered.
"""

from pydantic import BaseModel, ConfigDict, Field
{%- if cookiecutter.database != "none" %}
from sqlalchemy.ext.asyncio import AsyncSession
{%- endif %}

from .events import Event

ARTICLE_EVENTS = frozenset({"article.created", "article.updated", "article.deleted"})


class UnknownEvent(Exception):
    pass


class ArticleChange(BaseModel):
    """The part of an article event every handler relies on."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(ge=1)
    version: int | None = Field(default=None, ge=1)  # absent from article.deleted

{% if cookiecutter.database != "none" %}
async def handle(event: Event, session: AsyncSession) -> None:
{%- else %}
async def handle(event: Event) -> None:
{%- endif %}
    if event.type not in ARTICLE_EVENTS:
        raise UnknownEvent(event.type)
    ArticleChange.model_validate(event.data)  # raises on a malformed event: retried, then dead
