"""What the routes announce of an article's changes: article.created, .updated and .deleted
events, published right after the change (messaging/publisher.py). A change is refused with a
503 before it happens when the broker cannot be reached."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends

from ..messaging.events import article_event
from ..messaging.publisher import BROKER_RESPONSES, Publisher, ready_publisher

EVENTS_RESPONSES = BROKER_RESPONSES  # what a route that changes articles documents: the 503


class ArticleEvents:
    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def created(self, row: dict[str, Any]) -> None:
        await self.publisher.add(article_event("created", row))

    async def updated(self, row: dict[str, Any]) -> None:
        await self.publisher.add(article_event("updated", row))

    async def deleted(self, article_id: int) -> None:
        await self.publisher.add(article_event("deleted", {"id": article_id}))


async def nothing_first() -> None:
    """No check before the broker's."""


def article_events(
    after: Callable[..., Awaitable[None]] = nothing_first,
) -> Callable[..., Awaitable[ArticleEvents]]:
    """A dependency giving the request's article events, or refusing the request (503) when the
    broker cannot be reached. `after` passes first: with the route's body check there, a bad
    body is a 422 whether the broker is up or not."""
    ready = ready_publisher(after=after)

    async def events(publisher: Annotated[Publisher, Depends(ready)]) -> ArticleEvents:
        return ArticleEvents(publisher)

    return events
