"""Refuse bad answers before anything is generated.

Each check returns an error message or None; main() prints the first one on a single line and
exits 1, and cookiecutter then removes the half-made output folder.
"""

import keyword
import re
import sys

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
    }
)  # fmt: skip
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
PACKAGE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
# PEP 440 public versions: 1.0, 0.1.0, 2.0.0a1, 1.0.post1, 1.0.0.dev3, 2!1.0 ...
# Longer names would push generated lines past the linters' limit.
MAX_NAME = 40
VERSION_RE = re.compile(r"^(\d+!)?\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


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


def find_error(answers: dict[str, str]) -> str | None:
    """The first problem with the answers, or None when they are all fine."""
    checks = [
        check_project_name(answers["project_name"]),
        check_slug(answers["project_slug"]),
        check_length(answers["project_slug"]),
        check_package_name(answers["package_name"]),
        check_length(answers["package_name"]),
        check_email(answers["author_email"]),
        check_version(answers["version"]),
    ]
    return next((error for error in checks if error), None)


def main() -> None:
    error = find_error(
        {
            "project_name": {{ cookiecutter.project_name | tojson }},
            "project_slug": {{ cookiecutter.project_slug | tojson }},
            "package_name": {{ cookiecutter.package_name | tojson }},
            "author_email": {{ cookiecutter.author_email | tojson }},
            "version": {{ cookiecutter.version | tojson }},
        }
    )
    if error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
