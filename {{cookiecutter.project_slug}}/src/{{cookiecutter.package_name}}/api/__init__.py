"""The HTTP surface of the service, under /api/v1."""
