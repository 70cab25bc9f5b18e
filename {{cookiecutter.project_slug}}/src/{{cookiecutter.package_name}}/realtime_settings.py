"""The settings of the realtime endpoints (api/realtime.py), composed into Settings
(settings.py)."""

from pydantic import Field

from .settings_group import SettingsGroup


class RealtimeSettings(SettingsGroup):
    # Bounds per client (its principal when signed in, else its address as the rate limiter sees
    # it) and in total, so a flood closes the offender only.
    realtime_max_connections_per_client: int = Field(default=5, ge=1, le=10_000)  # WebSockets
    realtime_max_streams_per_client: int = Field(default=5, ge=1, le=10_000)  # event streams
    realtime_max_subscribers: int = Field(default=1000, ge=1, le=1_000_000)  # both, all clients
    realtime_max_message_bytes: int = Field(default=4096, ge=1, le=1024 * 1024)  # UTF-8
    realtime_messages_per_second: float = Field(default=5.0, gt=0, le=1000)  # over its sockets
