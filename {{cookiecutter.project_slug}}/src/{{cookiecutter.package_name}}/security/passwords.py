"""Password checks with argon2 (pwdlib), kept off the event loop and bounded in number.

An argon2 check takes tens of milliseconds of CPU and 64 MiB of memory, on purpose: it runs in
a worker thread, at most CHECKS_AT_ONCE at a time with at most CHECKS_WAITING in line, and only
on the token route, never per request. `make password-hash` (python -m
<package>.security.passwords) asks for a password twice and prints the hash to put in
JWT_USERS.
"""

import getpass
import secrets
import sys
from functools import cached_property

import anyio
import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

CHECKS_AT_ONCE = 4
CHECKS_WAITING = 32  # beyond these, a sign-in is refused at once (503) rather than queued


class PasswordChecksBusy(Exception):
    """Every password check slot is taken and the queue is full."""


class PasswordChecker:
    def __init__(self) -> None:
        self.hasher = PasswordHash((Argon2Hasher(),))
        self.limiter = anyio.CapacityLimiter(CHECKS_AT_ONCE)

    @cached_property
    def decoy_hash(self) -> str:
        """A hash no password matches, made on first use with the current parameters."""
        return self.hasher.hash(secrets.token_urlsafe(32))

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Whether the password matches. With no hash (an unknown user) a decoy hash is checked
        anyway, so a wrong user name takes as long as a wrong password and reveals nothing.

        Raises PasswordChecksBusy when CHECKS_WAITING checks already wait for a slot: a flood
        of sign-ins gets quick refusals instead of a queue that only grows."""
        if self.limiter.statistics().tasks_waiting >= CHECKS_WAITING:
            raise PasswordChecksBusy
        return await anyio.to_thread.run_sync(
            self.check, password, password_hash, limiter=self.limiter
        )

    def check(self, password: str, password_hash: str | None) -> bool:
        """The blocking part, run in a worker thread (the decoy is made there too)."""
        matches = self.hasher.verify(password, password_hash or self.decoy_hash)
        return matches and password_hash is not None


def hash_password(password: str) -> str:
    """The argon2 hash to store, with the current default parameters."""
    return PasswordHash((Argon2Hasher(),)).hash(password)


def main() -> None:
    """Print the argon2 hash of a password typed twice at the prompt (or one line of stdin)."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise SystemExit("ERROR: the passwords differ; nothing was hashed")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise SystemExit("ERROR: empty password")
    print(hash_password(password))


if __name__ == "__main__":
    main()
