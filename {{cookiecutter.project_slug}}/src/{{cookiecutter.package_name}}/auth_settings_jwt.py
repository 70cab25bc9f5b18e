"""The settings of tokens (security/tokens.py), composed into Settings (settings.py)."""

import json
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from .settings_group import RateLimit, SettingsGroup

# Known to everyone who reads this file: fine on a laptop, refused everywhere else.
DEVELOPMENT_JWT_SECRET = "development-only-jwt-secret-change-me-0123456789"  # nosec B105


class ConfiguredUser(BaseModel):
    """A user from the settings: an argon2 hash (`make password-hash`), never the password."""

    password_hash: str = Field(pattern=r"^\$argon2(id|i|d)\$")
    scopes: list[str] = []


class AuthSettings(SettingsGroup):
    # OAuth2 password flow issuing short-lived JWTs (HS256) signed with this secret.
    jwt_secret: SecretStr = SecretStr(DEVELOPMENT_JWT_SECRET)
    jwt_expire_minutes: int = Field(default=15, ge=1, le=1440)
    # JSON: {"alice": {"password_hash": "$argon2id$...", "scopes": ["articles:write"]}}
    jwt_users: Annotated[dict[str, ConfiguredUser], NoDecode] = {}
    rate_limit_sign_in: RateLimit = "5/minute"  # the token route, per client and per user name

    @field_validator("jwt_secret")
    @classmethod
    def long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (`make jwt-secret`)")
        return value

    @field_validator("jwt_users", mode="before")
    @classmethod
    def decode_json(cls, value: object) -> object:
        """The environment's text as JSON, so that a malformed one is named like any bad value."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON ({error})") from None

    def refusals(self) -> dict[str, str]:
        refused = super().refusals()
        if self.lenient:
            return refused
        if self.jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET:
            refused["jwt_secret"] = (  # nosec B105
                "is the published development secret: set your own (`make jwt-secret`)"
            )
        if not self.jwt_users:
            refused["jwt_users"] = (
                "must list at least one user (`make password-hash`): nobody could sign in"
            )
        return refused
