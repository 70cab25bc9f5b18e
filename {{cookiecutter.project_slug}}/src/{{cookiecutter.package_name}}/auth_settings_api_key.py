"""The settings of API keys (security/api_keys.py), composed into Settings (settings.py)."""

import re
from typing import Annotated

from pydantic import field_validator
from pydantic_settings import NoDecode

from .settings_group import SettingsGroup

# name:sha256-hex pairs, comma-separated: the keys themselves are never stored.
KeyDigests = Annotated[dict[str, str], NoDecode]
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class AuthSettings(SettingsGroup):
    # API keys in X-API-Key, stored as SHA-256 digests (`make api-key` makes a new one).
    api_key_digests: KeyDigests = {}

    @field_validator("api_key_digests", mode="before")
    @classmethod
    def split_name_digest_pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = [item.strip().partition(":") for item in value.split(",") if item.strip()]
        return {name.strip(): digest.strip().lower() for name, _, digest in pairs}

    @field_validator("api_key_digests")
    @classmethod
    def check_digests(cls, value: dict[str, str]) -> dict[str, str]:
        for name, digest in value.items():
            if not name or not SHA256_HEX.fullmatch(digest):
                raise ValueError(
                    "expected name:digest pairs, each digest 64 hex characters "
                    "(`make api-key` prints one); never the key itself"
                )
        return value

    def refusals(self) -> dict[str, str]:
        refused = super().refusals()
        if not self.lenient and not self.api_key_digests:
            refused["api_key_digests"] = "must list at least one key digest (`make api-key`)"
        return refused
