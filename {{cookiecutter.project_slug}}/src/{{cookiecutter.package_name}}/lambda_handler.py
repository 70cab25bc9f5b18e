"""AWS Lambda entry point: API Gateway events (HTTP API v2 or REST API v1) to the ASGI app.

The function's handler is `<package>.lambda_handler.handler`. Mangum turns each event into an
ASGI request and runs the app's lifespan around it; settings come from the function's
environment variables, as in a container.
"""

from mangum import Mangum

from .main import app

# Sent as text, not base64: every media type the service answers with but binary ones.
TEXT_MIME_TYPES = [
    "text/",
    "application/json",
    "application/problem+json",
    "application/javascript",
]
handler = Mangum(app, lifespan="auto", text_mime_types=TEXT_MIME_TYPES)
