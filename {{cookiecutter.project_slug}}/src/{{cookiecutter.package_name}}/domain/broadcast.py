"""An in-process publish/subscribe hub for the realtime endpoints.

Each subscriber has a bounded queue: a slow one loses its oldest messages instead of slowing
everybody. close() ends every subscription, and those opened after it at once, so open streams
finish when the service stops.
For several workers or replicas, put Redis pub/sub behind the same three methods.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    id: int
    text: str


class Subscription:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue(size)

    def put(self, item: Message | None) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(item)

    async def get(self) -> Message | None:
        """The next message, or None once the hub has closed."""
        return await self.queue.get()

    async def __aiter__(self) -> AsyncIterator[Message]:
        while (message := await self.get()) is not None:
            yield message


class Broadcaster:
    def __init__(self, queue_size: int = 100) -> None:
        self.queue_size = queue_size
        self.subscriptions: set[Subscription] = set()
        self.last_id = 0
        self.closed = False

    def publish(self, text: str) -> Message:
        self.last_id += 1
        message = Message(self.last_id, text)
        for subscription in self.subscriptions:
            subscription.put(message)
        return message

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        subscription = Subscription(self.queue_size)
        if self.closed:
            subscription.put(None)
        self.subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self.subscriptions.discard(subscription)

    def close(self) -> None:
        self.closed = True
        for subscription in self.subscriptions:
            subscription.put(None)
