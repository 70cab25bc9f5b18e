"""Remove what the chosen options leave out, make the project a git repository, then print the
next steps.

One remove_<feature>() per option, called from a flat main(); no network.
"""

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

PACKAGE_DIR = Path("src") / "{{ cookiecutter.package_name }}"
DOCS = Path("docs")  # one page per feature, removed with it
DASHBOARDS = Path("deploy") / "grafana" / "dashboards"
COMMIT_YOURSELF = "git init && git add --all && git commit -m 'Bake from fastapi-service-template'"
# Options added after a release: that release, and the value that keeps what its bakes did.
NEW_OPTIONS = {"database": ("0.2.0", "none"), "messaging": ("0.2.0", "none")}


def remove_paths(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def keep_variant(module: Path, chosen: str, variants: tuple[str, ...]) -> None:
    """Keep <module>_<chosen>.py as <module>.py, remove the other variants: every bake imports
    the same module name, whatever the options."""
    for variant in variants:
        path = module.with_name(f"{module.name}_{variant}.py")
        if variant == chosen:
            path.replace(module.with_name(f"{module.name}.py"))
        else:
            path.unlink(missing_ok=True)


def choose_article_store(database: str) -> None:
    """The articles in a table, or in memory without a database."""
    store = "memory" if database == "none" else "sql"
    keep_variant(PACKAGE_DIR / "domain" / "article_store", store, ("sql", "memory"))


def choose_article_events(messaging: str, database: str) -> None:
    """Article events through the outbox, published right after the write, or none."""
    if messaging == "none":
        events = "none"
    else:
        events = "broker" if database == "none" else "outbox"
    keep_variant(PACKAGE_DIR / "domain" / "article_events", events, ("outbox", "broker", "none"))


def choose_access(auth: str) -> None:
    """Who may write: anyone, a caller with an API key, or a token holding the scope."""
    keep_variant(PACKAGE_DIR / "security" / "access", auth, ("none", "api_key", "jwt"))


def choose_resources(database: str, messaging: str) -> None:
    """What the app holds open while it serves: a database pool (with the outbox's relay when
    events go out), the publisher without a database, or nothing."""
    if database == "none":
        resources = "publisher" if messaging == "rabbitmq" else "none"
    else:
        resources = "outbox" if messaging == "rabbitmq" else "database"
    keep_variant(PACKAGE_DIR / "resources", resources, ("outbox", "database", "publisher", "none"))


def choose_socket_access(auth: str) -> None:
    """Who may open the realtime WebSocket: anyone, a caller with an API key, or a token."""
    keep_variant(PACKAGE_DIR / "security" / "socket_access", auth, ("none", "api_key", "jwt"))


def choose_deduplicator(database: str) -> None:
    """How the worker runs a handler once per message id: claimed in the database, or
    remembered in the process without one."""
    dedup = "memory" if database == "none" else "database"
    keep_variant(PACKAGE_DIR / "messaging" / "dedup", dedup, ("database", "memory"))


def choose_auth_settings(auth: str) -> None:
    """The settings of API keys or of tokens, composed into Settings; none without auth."""
    keep_variant(PACKAGE_DIR / "auth_settings", auth, ("api_key", "jwt"))


def remove_examples() -> None:
    remove_paths(
        PACKAGE_DIR / "examples_settings.py",
        PACKAGE_DIR / "api" / "articles.py",
        PACKAGE_DIR / "domain" / "articles.py",
        PACKAGE_DIR / "domain" / "article_store.py",
        PACKAGE_DIR / "domain" / "article_events.py",
        PACKAGE_DIR / "api" / "characters.py",
        PACKAGE_DIR / "domain" / "characters.py",
        PACKAGE_DIR / "resilience" / "cache_redis.py",
        PACKAGE_DIR / "api" / "primes.py",
        PACKAGE_DIR / "domain" / "primes.py",
        Path("tests") / "test_primes.py",
        Path("tests") / "test_articles.py",
        Path("tests") / "test_article_versions.py",
        Path("tests") / "test_characters.py",
        Path("tests") / "test_cache_redis.py",
        Path("tests") / "test_publisher.py",  # its every test writes an article
        DOCS / "examples.md",
    )


def remove_realtime() -> None:
    remove_paths(
        PACKAGE_DIR / "realtime_settings.py",
        PACKAGE_DIR / "api" / "realtime.py",
        PACKAGE_DIR / "domain" / "broadcast.py",
        PACKAGE_DIR / "security" / "realtime.py",
        PACKAGE_DIR / "security" / "socket_access.py",
        Path("tests") / "test_realtime.py",
        Path("tests") / "test_realtime_guards.py",
        Path("tests") / "realtime_clients.py",
        DOCS / "realtime.md",
    )


def remove_aws_lambda() -> None:
    remove_paths(
        PACKAGE_DIR / "lambda_handler.py",
        Path("tests") / "test_lambda_handler.py",
        DOCS / "lambda.md",
    )


def remove_auth_api_key() -> None:
    remove_paths(
        PACKAGE_DIR / "security" / "api_keys.py",
        Path("tests") / "test_api_keys.py",
        DOCS / "api-keys.md",
    )


def remove_auth_jwt() -> None:
    remove_paths(
        PACKAGE_DIR / "security" / "tokens.py",
        PACKAGE_DIR / "security" / "users.py",
        PACKAGE_DIR / "security" / "passwords.py",
        PACKAGE_DIR / "security" / "dev_user.py",
        PACKAGE_DIR / "api" / "tokens.py",
        Path("tests") / "test_tokens.py",
        Path("tests") / "test_token_users.py",
        DOCS / "jwt.md",
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


def remove_database() -> None:
    remove_paths(
        PACKAGE_DIR / "db.py",
        PACKAGE_DIR / "db_settings.py",
        PACKAGE_DIR / "db_errors.py",
        PACKAGE_DIR / "schema.py",
        PACKAGE_DIR / "models.py",
        PACKAGE_DIR / "domain" / "article_rows.py",
        Path("alembic.ini"),
        Path("tests") / "test_database.py",
        DOCS / "database.md",
        DASHBOARDS / "database.json",
        Path("tests") / "test_models.py",
    )
    shutil.rmtree(PACKAGE_DIR / "migrations", ignore_errors=True)
    remove_migration_job()


def remove_migration_job() -> None:
    """A Kubernetes Job migrates a shared PostgreSQL; a SQLite file is the pod's own."""
    remove_paths(Path("deploy") / "k8s" / "migrate-job.yaml")


def remove_example_migration() -> None:
    """Without the examples, no table yet: the first migration is the user's own."""
    remove_paths(
        PACKAGE_DIR / "domain" / "article_rows.py",
        PACKAGE_DIR / "migrations" / "versions" / "0001_create_articles.py",
    )


def remove_messaging() -> None:
    shutil.rmtree(PACKAGE_DIR / "messaging", ignore_errors=True)
    remove_paths(
        PACKAGE_DIR / "worker.py",
        PACKAGE_DIR / "messaging_settings.py",
        PACKAGE_DIR / "migrations" / "versions" / "0002_create_outbox.py",
        Path("deploy") / "k8s" / "worker-deployment.yaml",
        Path("tests") / "test_messaging.py",
        Path("tests") / "test_outbox.py",
        Path("tests") / "test_publisher.py",
        Path("tests") / "test_worker.py",
        Path("tests") / "fake_broker.py",
        Path("tests") / "deliveries.py",
        DOCS / "messaging.md",
        DASHBOARDS / "messaging-worker.json",
        DASHBOARDS / "messaging-outbox.json",
        DASHBOARDS / "messaging-publisher.json",
    )


def remove_outbox() -> None:
    """Without a database, events are published right after the write (publisher.py)."""
    remove_paths(
        PACKAGE_DIR / "messaging" / "outbox.py",
        DASHBOARDS / "messaging-outbox.json",
        Path("tests") / "test_outbox.py",
    )


def remove_direct_publisher() -> None:
    """With a database, the outbox publishes (outbox.py)."""
    remove_paths(
        PACKAGE_DIR / "messaging" / "publisher.py",
        DASHBOARDS / "messaging-publisher.json",
        Path("tests") / "test_publisher.py",
    )


def remove_empty_domain() -> None:
    domain = PACKAGE_DIR / "domain"
    if domain.is_dir() and [p.name for p in domain.iterdir()] == ["__init__.py"]:
        shutil.rmtree(domain)


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def first_line(text: str) -> str:
    return next(iter(text.strip().splitlines()), "no message")


def start_git_repository(author: str, email: str, message: str) -> str:
    """git init and a first commit of the whole bake; returns what to tell the user.

    Never fails the bake: without git, or inside another repository, it says what to do instead.
    Without a git identity the commit is made as the author answered in the prompts.
    """
    if shutil.which("git") is None:
        return f"git was not found; once it is installed: {COMMIT_YOURSELF}"
    outer = git("rev-parse", "--show-toplevel")
    if outer.returncode == 0:
        return (
            f"it is inside the git repository at {outer.stdout.strip()}, so not a repository "
            f"of its own; to make it one: {COMMIT_YOURSELF}"
        )
    init = git("init", "--quiet", "--initial-branch=main")  # the branch its CI runs on
    if init.returncode != 0:
        return f"git init failed ({first_line(init.stderr)}); {COMMIT_YOURSELF}"
    unknown = any(git("var", f"GIT_{who}_IDENT").returncode for who in ("AUTHOR", "COMMITTER"))
    identity = ["-c", f"user.name={author}", "-c", f"user.email={email}"] if unknown else []
    git("add", "--all")
    commit = git(*identity, "commit", "--quiet", "--no-verify", "--message", message)
    if commit.returncode != 0:
        return f"git commit failed ({first_line(commit.stderr)}); git add --all && git commit"
    if unknown:
        return (
            f"a git repository whose first commit is by {author} <{email}>, as git knows no "
            'user here; set yours: git config --global user.name "Your Name" and '
            "git config --global user.email you@example.com"
        )
    return "a git repository with a first commit"


def path_from(project: Path, started_in: Path) -> str:
    """The project's folder as typed where cookiecutter was started: relative when it is there
    or one level up (--output-dir ..), else absolute."""
    relative = Path(os.path.relpath(project, started_in))
    if relative.parts.count("..") > 1:
        return shlex.quote(str(project))
    return shlex.quote(str(relative))


def print_next_steps(repository: str, project: str) -> None:
    print(
        f"\nYour service is ready in {project}: {repository}.\n"
        "Next steps:\n"
        f"  cd {project}\n"
        "  cp .env.example .env   # the settings, one comment each (.env is git-ignored)\n"
        "  make install           # uv sync: creates .venv and uv.lock (needs uv: pip install uv)\n"
        "  make run               # http://127.0.0.1:8000/docs; Ctrl-C stops it\n"
        "  make check             # lint, types, security, tests\n"
    )


def new_options_notice(given: dict[str, str]) -> str:
    """What a project updated from an earlier release gets for the options it never answered.

    cruft passes only the recorded public answers, so an option the project lacks takes its
    default here, and this render cannot tell an update from a new bake: it says so for both.
    """
    lines = ["NOTICE to a project updated from an earlier release: options it never answered"]
    keep = {}
    for option, (after, before) in NEW_OPTIONS.items():
        lines.append(f"  {option}={given[option]} (new after {after}; its bakes were {before})")
        if given[option] != before:
            keep[option] = before
    if keep:
        update = "cruft update --variables-to-update " + shlex.quote(json.dumps(keep))
        lines.append(f"To keep the previous behaviour, update with: {update}")
    lines.append("What changes and what to do: the template's CHANGELOG.md, Upgrading.")
    return "\n".join(lines)


def main() -> None:
    choose_article_store("{{ cookiecutter.database }}")
    choose_article_events("{{ cookiecutter.messaging }}", "{{ cookiecutter.database }}")
    choose_access("{{ cookiecutter.auth }}")
    choose_resources("{{ cookiecutter.database }}", "{{ cookiecutter.messaging }}")
    choose_socket_access("{{ cookiecutter.auth }}")
    choose_deduplicator("{{ cookiecutter.database }}")
    choose_auth_settings("{{ cookiecutter.auth }}")
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
    if "{{ cookiecutter.database }}" == "none":
        remove_database()
    elif "{{ cookiecutter.include_examples }}" != "True":
        remove_example_migration()
    if "{{ cookiecutter.database }}" == "sqlite":
        remove_migration_job()
    if "{{ cookiecutter.messaging }}" == "none":
        remove_messaging()
    elif "{{ cookiecutter.database }}" == "none":
        remove_outbox()
    else:
        remove_direct_publisher()
    if "{{ cookiecutter.database }}" == "none":
        remove_empty_domain()  # with a database, domain/ is where a new model goes (models.py)
    # cruft (which records the template's _commit) also renders the template into temporary
    # folders that it compares file by file: a .git there would be compared too.
    # This hook runs in the project's folder; the user stands where cookiecutter was started.
    # cruft update renders the previous release first, in the same process: its
    # local_extensions (imported once, without started_in) then serves this render too.
    project = path_from(Path.cwd(), Path({{ started_in | default("..") | tojson }}))
    if "{{ cookiecutter._commit is defined }}" == "True":
        print_next_steps(f"cruft records the template in .cruft.json; {COMMIT_YOURSELF}", project)
        given = {"database": "{{ cookiecutter.database }}"}
        given["messaging"] = "{{ cookiecutter.messaging }}"
        print(new_options_notice(given))
    else:
        print_next_steps(
            start_git_repository(
                author={{ cookiecutter.author_name | tojson }},
                email={{ cookiecutter.author_email | tojson }},
                message="Bake " + {{ cookiecutter.project_name | tojson }}
                + " from fastapi-service-template",
            ),
            project,
        )


if __name__ == "__main__":
    main()
