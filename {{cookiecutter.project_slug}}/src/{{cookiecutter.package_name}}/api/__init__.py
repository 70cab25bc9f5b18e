"""The HTTP surface of the service, under /api/v1.

Each resource has its router, made as `APIRouter(prefix=f"{API_PREFIX}/<resource>",
route_class=RateLimitedRoute, responses=RATE_LIMITED)` (security/rate_limit.py): the route
class counts every request against the default limit, RATE_LIMITED documents its 429.
"""

API_PREFIX = "/api/v1"  # each resource's router starts its own prefix with it
