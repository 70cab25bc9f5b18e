"""Response compression: Starlette's GZipMiddleware, unless a proxy in front compresses.

Behind the shipped nginx config (deploy/nginx), which compresses JSON itself, GZIP_ENABLED=false
leaves the middleware out of the stack: every request would otherwise pay for it, and the
proxy's CPU is cheaper than the service's.

Only a request whose Accept-Encoding names gzip can get a compressed answer, so only those go
through GZipMiddleware (as security/cors.py does for Origin). The others skip it: for them it
would only add `Vary: Accept-Encoding` to an answer it would compress for a client that asks,
which this middleware adds itself, without parsing the request's and the response's headers
into mappings.
"""

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..settings import Settings

# Checked against every response: only what this API sends and must not compress (an event
# stream would be held back). Add a type here if a route serves already-compressed files
# (images, archives).
NOT_COMPRESSED = ("text/event-stream",)
# Caches must not serve an answer made for a client without gzip to one that has it.
VARY_ACCEPT_ENCODING = (b"vary", b"Accept-Encoding")


class AcceptedGZipMiddleware:
    """GZipMiddleware for requests that accept gzip; on the others, `Vary: Accept-Encoding`
    wherever GZipMiddleware would have compressed the answer."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.minimum_size = settings.gzip_minimum_bytes
        self.gzip = GZipMiddleware(
            app,
            minimum_size=self.minimum_size,
            # zlib's own default: Starlette's 9 costs far more CPU for a few bytes less.
            compresslevel=6,
            exclude_content_types=NOT_COMPRESSED,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"accept-encoding" and b"gzip" in value:
                await self.gzip(scope, receive, send)
                return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start" and self.compressible(message):
                message["headers"] = [*message.get("headers", ()), VARY_ACCEPT_ENCODING]
            await send(message)

        await self.app(scope, receive, send_with_vary)

    def compressible(self, start: Message) -> bool:
        """Whether GZipMiddleware would compress this answer for a client that accepts gzip:
        not partial, not encoded already, not of an excluded type, not known to be small."""
        if start["status"] == 206:
            return False
        for name, value in start.get("headers", ()):
            if name == b"content-encoding":
                return False
            if name == b"content-length" and int(value) < self.minimum_size:
                return False
            if name == b"content-type":
                media_type = value.decode("latin-1").partition(";")[0].strip().lower()
                if media_type in NOT_COMPRESSED:
                    return False
        return True


def gzip_middleware(settings: Settings) -> list[Middleware]:
    """GZip for complete bodies from GZIP_MINIMUM_BYTES up; none when disabled."""
    if not settings.gzip_enabled:
        return []
    return [Middleware(AcceptedGZipMiddleware, settings=settings)]
