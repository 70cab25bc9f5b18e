import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.settings import (
    ENV_PREFIX,
    Settings,
    get_settings,
    problems,
)

# Values a laptop may use and nothing else: each is refused in staging and production. The
# defaults left out here are refused too: the auth secret and the metrics token.
UNSAFE_VALUES: dict[str, Any] = {
    "debug": True,
    "trusted_proxies": ["0.0.0.0/0"],
    "allowed_hosts": ["*"],
    "docs_in_production": True,  # without credentials
{%- if cookiecutter.database == "postgresql" %}
    "database_url": "",  # a SQLite file
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}
    "broker_url": "amqp://guest:guest@rabbitmq:5672/",  # RabbitMQ's own default user
{%- endif %}
}
REFUSED = {
    "debug",
    "trusted_proxies",
    "allowed_hosts",
    "docs_username",
    "docs_password",
    "metrics_token",
{%- if cookiecutter.auth == "api_key" %}
    "api_key_digests",
{%- elif cookiecutter.auth == "jwt" %}
    "jwt_secret",
    "jwt_users",
{%- endif %}
{%- if cookiecutter.database == "postgresql" %}
    "database_url",
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}
    "broker_url",
{%- endif %}
}


def refused(error: ValidationError) -> set[str]:
    return {name for name, _ in problems(error)}


def test_defaults_are_safe_for_local_development() -> None:
    settings = Settings(_env_file=None)
    assert settings.environment == "development"
    assert settings.debug is False
    assert settings.host == "127.0.0.1"
    assert settings.cors_origins == []
    assert settings.trusted_proxies == []


def test_settings_come_from_prefixed_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}LOG_LEVEL", "debug")
    monkeypatch.setenv(f"{ENV_PREFIX}CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv(f"{ENV_PREFIX}PORT", "9000")
    settings = Settings(_env_file=None)
    assert settings.log_level == "DEBUG"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.port == 9000


def test_settings_come_from_a_dotenv_file_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{ENV_PREFIX}SERVICE_NAME=from-dotenv\n{ENV_PREFIX}WORKERS=3\n")
    monkeypatch.setenv(f"{ENV_PREFIX}WORKERS", "2")
    settings = Settings(_env_file=env_file)
    assert settings.service_name == "from-dotenv"
    assert settings.workers == 2


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_every_environment_but_development_refuses_every_unsafe_value_at_once(
    environment: str,
) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(_env_file=None, environment=environment, **UNSAFE_VALUES)
    assert refused(error.value) == REFUSED


def test_development_allows_them() -> None:
    Settings(_env_file=None, environment="development", **UNSAFE_VALUES)


def test_any_environment_refuses_wildcard_cors_with_credentials() -> None:
    with pytest.raises(ValidationError, match="lets any site act as the user") as error:
        Settings(_env_file=None, cors_origins=["*"], cors_allow_credentials=True)
    assert refused(error.value) == {"cors_allow_credentials"}


@pytest.fixture
def uncached() -> Iterator[None]:
    """get_settings() reads the environment again in this test, and the cache is left clean."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("uncached")
def test_a_bad_value_stops_the_service_with_one_readable_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}ENVIRONMENT", "prod")
    monkeypatch.setenv(f"{ENV_PREFIX}PORT", "70000")
    with pytest.raises(SystemExit) as stopped:
        get_settings()
    message = str(stopped.value.code)
    assert message.startswith("ERROR: invalid settings: ")
    assert f"{ENV_PREFIX}ENVIRONMENT: Input should be 'development'" in message
    assert f"{ENV_PREFIX}PORT: " in message
    assert "\n" not in message


@pytest.mark.usefixtures("uncached")
def test_an_unsafe_staging_setup_names_every_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}ENVIRONMENT", "staging")
    monkeypatch.setenv(f"{ENV_PREFIX}DEBUG", "true")
    monkeypatch.setenv(f"{ENV_PREFIX}ALLOWED_HOSTS", "*")
    monkeypatch.setenv(f"{ENV_PREFIX}PORT", "70000")  # invalid, reported with the unsafe ones
    monkeypatch.setenv(f"{ENV_PREFIX}RATE_LIMIT_DEFAULT", "often")
    with pytest.raises(SystemExit) as stopped:
        get_settings()
    message = str(stopped.value.code)
    assert message.startswith("ERROR: invalid settings: ")
    for name in ("DEBUG", "ALLOWED_HOSTS", "PORT", "RATE_LIMIT_DEFAULT", "METRICS_TOKEN"):
        assert f"{ENV_PREFIX}{name}: " in message
    assert f"{ENV_PREFIX}DEBUG: must be false outside development" in message
    assert "Value error" not in message
    assert "\n" not in message
{%- if cookiecutter.auth == "jwt" %}


@pytest.mark.usefixtures("uncached")
def test_a_malformed_json_setting_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}JWT_USERS", "{alice}")
    monkeypatch.setenv(f"{ENV_PREFIX}PORT", "0")  # named with it: a JSON setting is one of many
    with pytest.raises(SystemExit) as stopped:
        get_settings()
    message = str(stopped.value.code)
    assert message.startswith(f"ERROR: invalid settings: {ENV_PREFIX}PORT: ")
    assert f"; {ENV_PREFIX}JWT_USERS: not valid JSON (" in message
    assert "\n" not in message
{%- endif %}


def start(environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The service started as `python -m` does, with only these settings (no .env in `cwd`)."""
    # Not ours, and not the coverage plugin's: measured from another folder, the child's data
    # would lack the project's coverage settings.
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith((ENV_PREFIX, "COV_CORE_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}"],
        env={**inherited, **environment},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "environment",
    [
        {"ENVIRONMENT": "staging", "DEBUG": "true", "ALLOWED_HOSTS": "*"},
{%- if cookiecutter.auth == "jwt" %}
        {"JWT_USERS": "{alice}"},
{%- endif %}
    ],
)
def test_python_dash_m_refuses_bad_settings_with_one_line_on_stderr(
    environment: dict[str, str], tmp_path: Path
) -> None:
    result = start({ENV_PREFIX + name: value for name, value in environment.items()}, tmp_path)
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert line.startswith("ERROR: invalid settings: ")
    for name in environment:
        if name != "ENVIRONMENT":
            assert f"{ENV_PREFIX}{name}: " in line


def test_settings_are_read_once_per_process() -> None:
    assert get_settings() is get_settings()


def test_the_env_example_lists_every_setting_with_a_valid_value() -> None:
    example = Path(__file__).resolve().parents[1] / ".env.example"
    lines = [line for line in example.read_text().splitlines() if line and line[0] != "#"]
    listed = {line.split("=", 1)[0] for line in lines}
    assert listed == {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert Settings(_env_file=example) == Settings(_env_file=None)
