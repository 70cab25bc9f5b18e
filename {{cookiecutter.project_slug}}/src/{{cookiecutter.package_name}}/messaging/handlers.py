"""What the worker does with each event. The example only checks what it receives: replace
`handle` with your own work (update a search index, call another service).
{%- if cookiecutter.database != "none" %}
It runs in the transaction that claimed the message id: write through `session`, and your
changes happen exactly once. Effects outside the database (an e-mail, an HTTP call) happen at
least once (a run that fails after them runs again): pass `event.id` as their idempotency key.
{%- else %}
It may run more than once for one message (see the README): keep it idempotent, and pass
`event.id` as the idempotency key of what it sends elsewhere (an e-mail, an HTTP call).
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
