"""A message's handler runs once per message id in this worker process: without a database,
the ids handled lately are remembered in memory (see the README for the limits).

The worker gives the consumer a `Deduplicator`; every bake has this module, in the version for
its database option.
"""

from collections import OrderedDict
from collections.abc import Awaitable, Callable

from .events import Event

Handler = Callable[[Event], Awaitable[None]]
REMEMBERED_IDS = 100_000  # per worker process


class Deduplicator:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: OrderedDict[str, None] = OrderedDict()

    async def run(self, event: Event) -> str:
        """Runs the handler unless this process has handled the message id already.

        At least once: the ids are remembered per process, for a while, so a delivery that
        reaches another worker, or comes after a restart, runs the handler again. Keep the
        handler idempotent; pass the event's id as the idempotency key of its effects.
        """
        if event.id in self.seen:
            return "duplicate"
        await self.handler(event)
        self.seen[event.id] = None
        if len(self.seen) > REMEMBERED_IDS:
            self.seen.popitem(last=False)
        return "handled"
