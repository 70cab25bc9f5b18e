"""The HTTP surface of the service, under /api/v1."""

API_PREFIX = "/api/v1"  # each resource's router starts its own prefix with it
