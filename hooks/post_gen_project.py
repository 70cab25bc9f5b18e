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
        PACKAGE_DIR / "api" / "dependencies.py",  # pagination, used by the articles only
        PACKAGE_DIR / "domain" / "articles.py",
        Path("tests") / "test_articles.py",
    )


def remove_realtime() -> None:
    remove_paths(
        PACKAGE_DIR / "api" / "realtime.py",
        PACKAGE_DIR / "domain" / "broadcast.py",
        Path("tests") / "test_realtime.py",
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
    if "{{ cookiecutter.rate_limit_storage }}" != "redis":
        remove_redis()
    remove_empty_domain()
    print_next_steps()


if __name__ == "__main__":
    main()
