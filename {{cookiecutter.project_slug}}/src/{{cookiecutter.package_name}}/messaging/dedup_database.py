"""A message's handler runs once per message id, however often the message arrives: the id is
claimed in the handler's own transaction (the processed_messages table).

The worker gives the consumer a `Deduplicator`; every bake has this module, in the version for
its database option.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UtcDateTime
from .events import Event
from .outbox import now

Handler = Callable[[Event, AsyncSession], Awaitable[None]]
# The worker's claim on a message id, in the dialect's own INSERT ... ON CONFLICT DO NOTHING.
INSERTS: dict[str, Callable[..., postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


class ProcessedMessage(Base):
    """A message the worker has handled: its id, committed with the handler's own changes."""

    __tablename__ = "processed_messages"

    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


async def claim(session: AsyncSession, message_id: str) -> bool:
    """Records `message_id` as processed in the session's transaction; False if another one
    has. Two transactions cannot both claim an id: the second one's insert waits for the first
    to end, then finds the id taken (False) or, if the first rolled back, claims it (True)."""
    insert = INSERTS[session.get_bind().dialect.name](ProcessedMessage)
    claimed = await session.scalar(
        insert.values(message_id=message_id, processed_at=now())
        .on_conflict_do_nothing(index_elements=[ProcessedMessage.message_id])
        .returning(ProcessedMessage.message_id)
    )
    return claimed is not None


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
