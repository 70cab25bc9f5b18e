"""Users who may ask for a token: a small repository interface, and the store that reads them
from the settings (JWT_USERS). To keep users in a database, write a class with the same `get`
and return it from `auth_state` in security/tokens.py."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..auth_settings import ConfiguredUser
from .passwords import PasswordChecker


@dataclass(frozen=True)
class User:
    username: str
    password_hash: str
    scopes: list[str]


class UserRepository(Protocol):
    async def get(self, username: str) -> User | None: ...


class ConfiguredUsers:
    """The users from the settings: argon2 hashes and scopes, read once at startup."""

    def __init__(self, users: Mapping[str, ConfiguredUser]) -> None:
        self.users = {
            name: User(name, entry.password_hash, list(entry.scopes))
            for name, entry in users.items()
        }

    async def get(self, username: str) -> User | None:
        return self.users.get(username)


async def authenticate(
    users: UserRepository, passwords: PasswordChecker, username: str, password: str
) -> User | None:
    """The user if the password is theirs; the check runs even for unknown users."""
    user = await users.get(username)
    if await passwords.verify(password, user.password_hash if user else None):
        return user
    return None
