from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings, get_settings


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
    env_file.write_text(f"{ENV_PREFIX}ENVIRONMENT=staging\n{ENV_PREFIX}WORKERS=3\n")
    monkeypatch.setenv(f"{ENV_PREFIX}WORKERS", "2")
    settings = Settings(_env_file=env_file)
    assert settings.environment == "staging"
    assert settings.workers == 2


def test_production_refuses_debug() -> None:
    with pytest.raises(ValidationError, match="DEBUG must be false in production"):
        Settings(_env_file=None, environment="production", debug=True)


def test_any_environment_refuses_wildcard_cors_with_credentials() -> None:
    with pytest.raises(ValidationError, match="lets any site act as the user"):
        Settings(_env_file=None, cors_origins=["*"], cors_allow_credentials=True)


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
def test_an_unsafe_production_setup_names_the_problem_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}ENVIRONMENT", "production")
    monkeypatch.setenv(f"{ENV_PREFIX}DEBUG", "true")
    with pytest.raises(SystemExit, match="DEBUG must be false in production"):
        get_settings()


def test_settings_are_read_once_per_process() -> None:
    assert get_settings() is get_settings()


def test_the_env_example_lists_every_setting_with_a_valid_value() -> None:
    example = Path(__file__).resolve().parents[1] / ".env.example"
    lines = [line for line in example.read_text().splitlines() if line and line[0] != "#"]
    listed = {line.split("=", 1)[0] for line in lines}
    assert listed == {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert Settings(_env_file=example) == Settings(_env_file=None)
