"""A local stand-in for Sentry: an HTTP endpoint on 127.0.0.1 that speaks the envelope protocol
(what sentry-sdk POSTs to /api/<project>/envelope/) and keeps every envelope it receives."""

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Envelope:
    raw: bytes  # as sent, decompressed: what a secret must never be part of
    header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]]  # each item's header and payload


def parse(raw: bytes) -> Envelope:
    """Newline-separated: the envelope's JSON header, then per item a JSON header and a payload
    of `length` bytes (or, without a length, up to the next newline)."""
    first, _, rest = raw.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return Envelope(raw, json.loads(first), items)


@dataclass
class SentrySink:
    port: int
    hold_seconds: float = 0.0  # how long each answer is held back: a slow network or Sentry
    envelopes: list[Envelope] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)  # when each answer left (time.time())

    @property
    def dsn(self) -> str:
        return f"http://public-key@127.0.0.1:{self.port}/1"

    def events(self) -> list[dict[str, Any]]:
        """The error events received (not the sessions or client reports)."""
        return [
            json.loads(payload)
            for envelope in self.envelopes
            for header, payload in envelope.items
            if header.get("type") == "event"
        ]

    def raw(self) -> bytes:
        return b"".join(envelope.raw for envelope in self.envelopes)


class Receiver(BaseHTTPRequestHandler):
    sink: SentrySink

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding", "identity")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding != "identity":
            raise ValueError(f"the sink cannot read Content-Encoding: {encoding}")
        self.sink.envelopes.append(parse(body))
        time.sleep(self.sink.hold_seconds)
        self.sink.answered.append(time.time())  # before the answer: the sender sees it after
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(hold_seconds: float = 0.0) -> Iterator[SentrySink]:
    """A sink on a free 127.0.0.1 port, for SENTRY_DSN=sink.dsn."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    sink = SentrySink(server.server_address[1], hold_seconds)
    server.RequestHandlerClass = type("OneReceiver", (Receiver,), {"sink": sink})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
