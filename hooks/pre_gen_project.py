"""Refuse bad answers before anything is generated.

Each check returns an error message or None; main() prints the first one on a single line and
exits 1, and cookiecutter then removes the half-made output folder.
"""

import json
import keyword
import re
import sys
from typing import Any

# Modules the generated service imports or installs: a package with one of these names would
# shadow them.
DEPENDENCY_MODULES = frozenset(
    {
        "anyio", "bandit", "black", "circuitbreaker", "coverage", "fastapi", "flake8",
        "h11", "httptools", "httpx", "limits", "mypy", "opentelemetry", "prometheus_client",
        "pydantic", "pydantic_core", "pydantic_settings", "pytest", "redis", "slowapi",
        "sniffio", "starlette", "tenacity", "test", "tests", "typing_extensions", "uvicorn", "uvloop",
        "watchfiles", "websockets",
        "argon2", "jwt", "multipart", "pwdlib", "python_multipart",  # auth=jwt
        "aiosqlite", "alembic", "asyncpg", "greenlet", "mako", "sqlalchemy",  # database
        "aio_pika", "aiormq", "pamqp", "yarl",  # messaging
    }
)  # fmt: skip
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
PACKAGE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
# Longer names would push generated lines past the linters' limit.
MAX_NAME = 40
# PEP 440 public versions: 1.0, 0.1.0, 2.0.0a1, 1.0.post1, 1.0.0.dev3, 2!1.0 ...
VERSION_RE = re.compile(r"^(\d+!)?\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")
# Plain text in cookiecutter.json rather than choice lists: cookiecutter refuses a value outside a
# list itself, with a traceback, before these checks could say it in one line.
CHOICES = {
    "python_version": ("3.11", "3.12", "3.13"),
    "auth": ("none", "api_key", "jwt"),
    "rate_limit_storage": ("memory", "redis"),
    "database": ("postgresql", "sqlite", "none"),
    "messaging": ("none", "rabbitmq"),
}
BOOLEANS = ("include_examples", "include_realtime", "aws_lambda")
# What cookiecutter reads as a boolean on the command line (2.7 and later converts them).
TEXT_BOOLEANS = ("1", "true", "t", "yes", "y", "on", "0", "false", "f", "no", "n", "off")


def check_project_name(name: str) -> str | None:
    if not name.strip():
        return "the project name is empty; give the service a name, e.g. 'My Service'"
    return None


def check_length(name: str) -> str | None:
    if len(name) > MAX_NAME:
        return f"{name!r} is longer than {MAX_NAME} characters; choose a shorter name"
    return None


def check_slug(slug: str) -> str | None:
    if not SLUG_RE.match(slug):
        return (
            f"{slug!r} is not a valid project slug; use lowercase letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit"
        )
    return None


def check_package_name(name: str) -> str | None:
    if not PACKAGE_RE.match(name):
        return f"{name!r} is not a valid Python package name; use lowercase letters, digits and _"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{name!r} is a Python keyword; choose another package name"
    if name in sys.stdlib_module_names or name in DEPENDENCY_MODULES:
        return (
            f"{name!r} would shadow the {name!r} module the service needs; "
            "choose another package name, e.g. 'my_service'"
        )
    return None


def check_email(email: str) -> str | None:
    if not EMAIL_RE.match(email):
        return f"{email!r} is not a valid e-mail address, e.g. 'team@example.com'"
    return None


def check_version(version: str) -> str | None:
    if not VERSION_RE.match(version):
        return f"{version!r} is not a valid PEP 440 version, e.g. '0.1.0'"
    return None


def check_choice(option: str, value: object) -> str | None:
    choices = CHOICES[option]
    if value not in choices:
        listed = ", ".join(choices[:-1]) + " or " + choices[-1]
        return f"{option}={value!r} is not offered; use {listed}"
    return None


def check_boolean(option: str, value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if str(value).lower() in TEXT_BOOLEANS:
        return (
            f"{option}={value!r} arrived as text: cookiecutter before 2.7 does not convert "
            "booleans given on the command line; upgrade it: pip install 'cookiecutter>=2.7'"
        )
    return f"{option}={value!r} is not true or false"


def check_lambda(aws_lambda: object, messaging: object) -> str | None:
    """What cannot run on Lambda: a frozen container runs no background loop."""
    if aws_lambda is True and messaging == "rabbitmq":
        return (
            "aws_lambda=true does not go with messaging=rabbitmq: the outbox relay is a background "
            "loop, and a frozen Lambda container runs no loop and keeps no broker connection; "
            "use aws_lambda=false or messaging=none"
        )
    return None


def find_bad_answer(answers: dict[str, Any]) -> tuple[str, str] | None:
    """The first bad answer's name and what is wrong with it, or None when all are fine."""
    text = {key: str(value) for key, value in answers.items()}
    checks = [
        ("project_name", check_project_name(text["project_name"])),
        ("project_slug", check_slug(text["project_slug"])),
        ("project_slug", check_length(text["project_slug"])),
        ("package_name", check_package_name(text["package_name"])),
        ("package_name", check_length(text["package_name"])),
        ("author_email", check_email(text["author_email"])),
        ("version", check_version(text["version"])),
        *[(option, check_choice(option, answers[option])) for option in CHOICES],
        *[(option, check_boolean(option, answers[option])) for option in BOOLEANS],
        ("aws_lambda", check_lambda(answers["aws_lambda"], answers["messaging"])),
    ]
    return next(((key, error) for key, error in checks if error), None)


def find_error(answers: dict[str, Any]) -> str | None:
    """What is wrong with the first bad answer, or None when they are all fine."""
    bad = find_bad_answer(answers)
    return bad[1] if bad else None


def main() -> None:
    # The answers as a JSON string: JSON's true and false are not Python's.
    error = find_error(json.loads({{ cookiecutter | tojson | tojson }}))
    if error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
