"""AWS Lambda entry point: API Gateway events (HTTP API v2 or REST API v1) to the ASGI app.

The function's handler is `<package>.lambda_handler.handler`. Mangum turns each event into an
ASGI request and runs the app's lifespan around it; settings come from the function's
environment variables, as in a container.
"""

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from .main import app

# Our errors are application/problem+json: send them as text, not base64.
handler = Mangum(
    app, lifespan="auto", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"]
)
