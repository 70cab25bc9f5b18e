"""A real HTTP upstream on 127.0.0.1 for the resilience tests, whose answers each test scripts:
fail N times then succeed, answer slowly, send Retry-After, drop the connection..."""

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Body = Callable[[str], Any]  # the request path -> the JSON to answer with


def echo_path(path: str) -> Any:
    return {"path": path}


@dataclass
class Reply:
    status: int = 200
    body: Any = echo_path  # JSON, a Body, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    close: bool = False  # drop the connection without answering


@dataclass
class FakeUpstream:
    url: str = ""
    default: Reply = field(default_factory=Reply)  # once the script is used up
    script: deque[Reply] = field(default_factory=deque)
    hits: list[str] = field(default_factory=list)  # "GET /path", one per request received
    traceparents: list[str | None] = field(default_factory=list)  # the W3C header of each
    lock: threading.Lock = field(default_factory=threading.Lock)

    def then(self, *replies: Reply) -> None:
        """The next answers, in order; the default one after them."""
        self.script.extend(replies)

    def next_reply(self, method: str, path: str) -> Reply:
        with self.lock:
            self.hits.append(f"{method} {path}")
            return self.script.popleft() if self.script else self.default


def handler_for(upstream: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real upstreams do

        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            upstream.traceparents.append(self.headers.get("traceparent"))
            reply = upstream.next_reply(self.command, self.path)
            time.sleep(reply.delay)
            if reply.close:
                self.close_connection = True
                return
            body = reply.body(self.path) if callable(reply.body) else reply.body
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(reply.status)
            for name, value in {"content-type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a slow answer closed its end: expected here


@contextmanager
def serving() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream()
    server = QuietServer(("127.0.0.1", 0), handler_for(upstream))
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
