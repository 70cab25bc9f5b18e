"""What operators see: logs and request ids (metrics and tracing join here)."""
