"""Remove what the chosen options leave out, then print the next steps.

One remove_<feature>() per option, called from a flat main(); no network.
"""

import shutil
from pathlib import Path

PACKAGE_DIR = Path("src") / "{{ cookiecutter.package_name }}"


def remove_paths(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def remove_examples() -> None:
    remove_paths(
        PACKAGE_DIR / "api" / "articles.py",
        PACKAGE_DIR / "domain" / "articles.py",
        PACKAGE_DIR / "api" / "characters.py",
        PACKAGE_DIR / "domain" / "characters.py",
        Path("tests") / "test_articles.py",
        Path("tests") / "test_characters.py",
    )


def remove_realtime() -> None:
    remove_paths(
        PACKAGE_DIR / "api" / "realtime.py",
        PACKAGE_DIR / "domain" / "broadcast.py",
        PACKAGE_DIR / "security" / "realtime.py",
        Path("tests") / "test_realtime.py",
    )


def remove_aws_lambda() -> None:
    remove_paths(
        PACKAGE_DIR / "lambda_handler.py",
        Path("tests") / "test_lambda_handler.py",
    )


def remove_auth_api_key() -> None:
    remove_paths(
        PACKAGE_DIR / "security" / "api_keys.py",
        Path("tests") / "test_api_keys.py",
    )


def remove_auth_jwt() -> None:
    remove_paths(
        PACKAGE_DIR / "security" / "tokens.py",
        PACKAGE_DIR / "security" / "users.py",
        PACKAGE_DIR / "security" / "passwords.py",
        PACKAGE_DIR / "api" / "tokens.py",
        Path("tests") / "test_tokens.py",
    )


def remove_auth_shared() -> None:
    """What both auth modes use: the principal, GET /api/v1/me, the tests' credentials."""
    remove_paths(
        PACKAGE_DIR / "security" / "principal.py",
        PACKAGE_DIR / "api" / "me.py",
        Path("tests") / "credentials.py",
    )


def remove_redis() -> None:
    remove_paths(Path("tests") / "test_rate_limit_redis.py")


def remove_empty_domain() -> None:
    domain = PACKAGE_DIR / "domain"
    if domain.is_dir() and [p.name for p in domain.iterdir()] == ["__init__.py"]:
        shutil.rmtree(domain)


def print_next_steps() -> None:
    print(
        "\nYour service is ready in ./{{ cookiecutter.project_slug }}. Next steps:\n"
        "  cd {{ cookiecutter.project_slug }}\n"
        "  make install   # uv sync: creates .venv and uv.lock\n"
        "  make run       # http://127.0.0.1:8000/docs\n"
        "  make check     # lint, types, security, tests\n"
    )


def main() -> None:
    if "{{ cookiecutter.include_examples }}" != "True":
        remove_examples()
    if "{{ cookiecutter.include_realtime }}" != "True":
        remove_realtime()
    if "{{ cookiecutter.aws_lambda }}" != "True":
        remove_aws_lambda()
    if "{{ cookiecutter.auth }}" != "api_key":
        remove_auth_api_key()
    if "{{ cookiecutter.auth }}" != "jwt":
        remove_auth_jwt()
    if "{{ cookiecutter.auth }}" == "none":
        remove_auth_shared()
    if "{{ cookiecutter.rate_limit_storage }}" != "redis":
        remove_redis()
    remove_empty_domain()
    print_next_steps()


if __name__ == "__main__":
    main()
