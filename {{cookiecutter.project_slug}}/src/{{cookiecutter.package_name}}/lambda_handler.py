"""AWS Lambda entry point: API Gateway events (HTTP API v2 or REST API v1) to the ASGI app.

The function's handler is `<package>.lambda_handler.handler`. Mangum turns each event into an
ASGI request and runs the app's lifespan around it; settings come from the function's
environment variables, as in a container.
"""

from mangum import Mangum

from .main import app

handler = Mangum(app, lifespan="auto")
