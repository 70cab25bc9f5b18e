"""GZip for complete response bodies of at least GZIP_MINIMUM_BYTES, for clients accepting it.

Pure ASGI, and cheaper than Starlette's GZipMiddleware, which builds a responder object and
parses the response headers on every request (+11 µs a request measured here, +23 µs when the
client accepts gzip): requests without `Accept-Encoding: gzip` pass straight through, and
small, streamed (Server-Sent Events) or already encoded bodies leave untouched.
"""

import gzip
from functools import partial

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LEVEL = 6  # nearly level 9's ratio for a fraction of its CPU
THREAD_MINIMUM_BYTES = 128 * 1024  # larger bodies are compressed off the event loop


def accepts_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value
    return False


def compressible(start: Message, body: Message, minimum_size: int) -> bool:
    return (
        body["type"] == "http.response.body"
        and not body.get("more_body", False)
        and len(body.get("body", b"")) >= minimum_size
        and start["status"] != 206
        and all(name != b"content-encoding" for name, _ in start.get("headers", ()))
    )


async def compress(body: bytes) -> bytes:
    if len(body) < THREAD_MINIMUM_BYTES:
        return gzip.compress(body, LEVEL, mtime=0)
    return await anyio.to_thread.run_sync(partial(gzip.compress, body, LEVEL, mtime=0))


class GZipMiddleware:
    def __init__(self, app: ASGIApp, minimum_size: int) -> None:
        self.app = app
        self.minimum_size = minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not accepts_gzip(scope):
            await self.app(scope, receive, send)
            return
        start: Message | None = None

        async def send_compressed(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message  # held until the body shows whether to compress
                return
            if start is not None:
                held, start = start, None
                if compressible(held, message, self.minimum_size):
                    body = await compress(message["body"])
                    held["headers"] = [
                        *(h for h in held.get("headers", ()) if h[0] != b"content-length"),
                        (b"content-length", str(len(body)).encode()),
                        (b"content-encoding", b"gzip"),
                        (b"vary", b"Accept-Encoding"),
                    ]
                    message = {**message, "body": body}
                await send(held)
            await send(message)

        await self.app(scope, receive, send_compressed)
