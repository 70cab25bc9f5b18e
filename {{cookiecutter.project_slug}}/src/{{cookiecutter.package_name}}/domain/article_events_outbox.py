"""What the routes announce of an article's changes: article.created, .updated and .deleted
events, added to the outbox in the change's own transaction (messaging/outbox.py), so an event
leaves if and only if its change commits."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends

from ..messaging.events import article_event
from ..messaging.outbox import EventsDep, Outbox

EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {}  # nothing refused: the outbox is a table


class ArticleEvents:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def created(self, row: dict[str, Any]) -> None:
        await self.outbox.add(article_event("created", row))

    async def updated(self, row: dict[str, Any]) -> None:
        await self.outbox.add(article_event("updated", row))

    async def deleted(self, article_id: int) -> None:
        await self.outbox.add(article_event("deleted", {"id": article_id}))


async def nothing_first() -> None:
    """No check before the events'."""


def article_events(
    after: Callable[..., Awaitable[None]] = nothing_first,
) -> Callable[..., Awaitable[ArticleEvents]]:
    """A dependency giving the request's article events, once `after` has passed."""

    async def events(outbox: EventsDep, passed: Annotated[None, Depends(after)]) -> ArticleEvents:
        return ArticleEvents(outbox)

    return events
