"""A message's handler runs once per message id, however often the message arrives: the id is
claimed in the handler's own transaction (the processed_messages table, messaging/outbox.py).

The worker gives the consumer a `Deduplicator`; every bake has this module, in the version for
its database option.
"""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .events import Event
from .outbox import claim

Handler = Callable[[Event, AsyncSession], Awaitable[None]]


class Deduplicator:
    def __init__(self, handler: Handler, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.handler = handler
        self.sessions = sessions

    async def run(self, event: Event) -> str:
        """Claims the message id, then runs the handler, in one transaction.

        The claim is an INSERT ... ON CONFLICT DO NOTHING: of two deliveries at once, one runs
        the handler while the other waits for its commit, then finds the id taken (or claims
        it, if that run failed and rolled back). The handler's database changes happen exactly
        once; its effects outside the database (an e-mail, an HTTP call) at least once, since a
        run that fails after them runs again: pass the event's id as their idempotency key.
        """
        async with self.sessions.begin() as session:
            if not await claim(session, event.id):
                return "duplicate"
            await self.handler(event, session)
        return "handled"
