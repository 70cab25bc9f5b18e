"""The service with its log lines written off the event loop, for `bench.py --queued-log`.

Starts the baked service as `python -m my_service` does, its one log handler moved behind the
standard library's `QueueHandler`, and a `QueueListener` thread doing the formatting and the
write. The request and trace ids are read in the caller, as any such version must (context
variables do not cross threads). A measurement, not a proposal: `benchmarks/README.md` gives
what it cost.
"""

import logging
import logging.handlers
import queue
from typing import Any

import my_service.observability.logging as service_logging

setup_with_one_handler = service_logging.setup_logging
listeners: list[logging.handlers.QueueListener] = []


class CaptureIds(logging.Filter):
    """The ids of the request being served, put on the record before it leaves this thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids: dict[str, Any] = {}
        service_logging.add_correlation_ids(ids)
        vars(record).update(ids)
        return True


def setup_queued_logging(settings: Any) -> None:
    setup_with_one_handler(settings)
    root = logging.getLogger()
    for listener in listeners:  # the service sets its logging up twice: keep one listener
        listener.stop()
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(lines, *root.handlers)
    listener.start()
    listeners.append(listener)
    queued = logging.handlers.QueueHandler(lines)
    queued.addFilter(CaptureIds())
    root.handlers = [queued]


# Before my_service.__main__ and my_service.main import it by name.
service_logging.setup_logging = setup_queued_logging

if __name__ == "__main__":
    from my_service.__main__ import main

    main()
