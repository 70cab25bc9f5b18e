"""What the routes announce of an article's changes: nothing, this service sends no events.

The routes call `created`, `updated` and `deleted` after each change: a version of this module
that sends them somewhere is the only file to change for them to leave.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends

EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {}  # nothing sent, so nothing refused


class ArticleEvents:
    async def created(self, row: dict[str, Any]) -> None:
        """Nothing to announce."""

    async def updated(self, row: dict[str, Any]) -> None:
        """Nothing to announce."""

    async def deleted(self, article_id: int) -> None:
        """Nothing to announce."""


async def nothing_first() -> None:
    """No check before the events'."""


def article_events(
    after: Callable[..., Awaitable[None]] = nothing_first,
) -> Callable[..., Awaitable[ArticleEvents]]:
    """A dependency giving the request's article events, once `after` has passed."""

    async def events(passed: Annotated[None, Depends(after)]) -> ArticleEvents:
        return ArticleEvents()

    return events
