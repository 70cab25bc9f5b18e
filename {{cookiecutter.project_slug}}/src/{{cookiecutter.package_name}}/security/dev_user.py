"""`make dev-user`: a user to try the API with, in `.env`, in one step (development only).

Adds (or replaces) the user in JWT_USERS in the `.env` file of the working directory, holding
every scope the service defines, with a new random password printed once; the file's other
lines and users are kept. Outside development, users come from the secret store instead
(`make password-hash`).
"""

import json
import re
import secrets
import sys
from pathlib import Path
from typing import Any

from ..settings import ENV_PREFIX
from .passwords import hash_password
from .tokens import SCOPES

ENV_FILE = Path(".env")
VARIABLE = f"{ENV_PREFIX}JWT_USERS"
USER_NAME = re.compile(r"[A-Za-z0-9._@-]+")


def is_users(line: str) -> bool:
    return line.partition("=")[0].strip() == VARIABLE


def read_users(lines: list[str]) -> dict[str, Any]:
    """The users of the JWT_USERS line, if there is one."""
    for line in filter(is_users, lines):
        value = line.partition("=")[2].strip().strip("'\"")
        try:
            users: dict[str, Any] = json.loads(value or "{}")
        except json.JSONDecodeError:
            raise SystemExit(
                f"ERROR: {ENV_FILE}: {VARIABLE} is not JSON; fix or remove it"
            ) from None
        return users
    return {}


def write_users(lines: list[str], users: dict[str, Any]) -> list[str]:
    """The lines with JWT_USERS set to `users` where it was (else last), in single quotes:
    dotenv and Docker Compose take those literally, and an argon2 hash is full of `$`."""
    new = f"{VARIABLE}='{json.dumps(users)}'"
    if any(map(is_users, lines)):
        return [new if is_users(line) else line for line in lines]
    return [*lines, new]


def main(argv: list[str]) -> None:
    name = argv[0] if argv else "dev"
    if not USER_NAME.fullmatch(name):
        raise SystemExit(f"ERROR: {name!r} is not a user name; use letters, digits and ._@-")
    lines = ENV_FILE.read_text().splitlines() if ENV_FILE.exists() else []
    users = read_users(lines)
    password = secrets.token_urlsafe(12)
    users[name] = {"password_hash": hash_password(password), "scopes": list(SCOPES)}
    ENV_FILE.write_text("\n".join(write_users(lines, users)) + "\n")
    scopes = ", ".join(SCOPES) or "none"
    print(f"{ENV_FILE}: user {name!r} (scopes: {scopes}) in {VARIABLE}; password: {password}")
    print("Restart `make run`, then sign in with Authorize at http://127.0.0.1:8000/docs")


if __name__ == "__main__":
    main(sys.argv[1:])
