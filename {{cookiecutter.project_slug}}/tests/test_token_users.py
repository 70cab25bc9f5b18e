"""The token service's secret and users: their settings, refused when unsafe outside
development, and the commands that make them (`make password-hash`, `make dev-user`)."""

import io
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.security import dev_user, passwords, tokens
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings, problems

from .conftest import production_settings

TOKEN_URL = "/api/v1/auth/token"
SECRET = "a-secret-for-these-tests-only-" + "0123456789" * 4
ARGON2_HASH = "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$aGFzaA"  # well-formed, matches nothing


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_outside_development_the_development_secret_is_refused(environment: str) -> None:
    development = Settings(_env_file=None).jwt_secret
    with pytest.raises(ValidationError, match="the published development secret") as error:
        Settings(
            _env_file=None, **production_settings(environment=environment, jwt_secret=development)
        )
    assert [name for name, _ in problems(error.value)] == ["jwt_secret"]
    Settings(_env_file=None, **production_settings(environment=environment, jwt_secret=SECRET))


def test_a_short_secret_is_refused_everywhere() -> None:
    with pytest.raises(ValidationError, match="must be at least 32 characters"):
        Settings(_env_file=None, jwt_secret="short")


def test_users_come_as_json_with_argon2_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    variable = f"{ENV_PREFIX}JWT_USERS"
    monkeypatch.setenv(variable, '{"carol": {"password_hash": "$argon2id$v=19$x"}}')
    assert Settings(_env_file=None).jwt_users["carol"].scopes == []
    monkeypatch.setenv(variable, '{"carol": {"password_hash": "plain text"}}')
    with pytest.raises(ValidationError, match="String should match pattern"):
        Settings(_env_file=None)


def test_make_password_hash_prints_a_hash_of_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    passwords.main()
    printed = capsys.readouterr().out.strip()
    assert PasswordHash.recommended().verify("s3cret", printed)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    with pytest.raises(SystemExit, match="empty password"):
        passwords.main()


def test_make_password_hash_prompts_at_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed")
    passwords.main()
    assert PasswordHash.recommended().verify("typed", capsys.readouterr().out.strip())


def test_make_password_hash_asks_twice_and_a_mismatch_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "typed" if len(prompts) == 1 else "tpyed"

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", getpass)
    with pytest.raises(SystemExit) as stopped:
        passwords.main()
    assert len(prompts) == 2
    [line] = str(stopped.value.code).splitlines()
    assert line == "ERROR: the passwords differ; nothing was hashed"
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_outside_development_no_users_is_refused(environment: str) -> None:
    with pytest.raises(ValidationError, match="must list at least one user") as error:
        Settings(_env_file=None, **production_settings(environment=environment, jwt_users={}))
    assert [name for name, _ in problems(error.value)] == ["jwt_users"]


def test_make_dev_user_writes_a_user_with_every_scope_who_signs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    alice = {"alice": {"password_hash": ARGON2_HASH}}
    env_file.write_text(
        f"{ENV_PREFIX}LOG_LEVEL=DEBUG\n{ENV_PREFIX}JWT_USERS={json.dumps(alice)}\n"
    )
    monkeypatch.chdir(tmp_path)
    dev_user.main([])
    dev_user.main([])  # again: a new password, the same one line
    printed = capsys.readouterr().out
    password = re.findall(r"password: (\S+)", printed)[-1]
    assert env_file.read_text().count("JWT_USERS") == 1
    settings = Settings(_env_file=env_file)
    assert settings.log_level == "DEBUG"  # the other lines are kept
    assert sorted(settings.jwt_users) == ["alice", "dev"]
    assert settings.jwt_users["dev"].scopes == list(tokens.SCOPES)
    with TestClient(create_app(settings)) as client:
        signed_in = client.post(TOKEN_URL, data={"username": "dev", "password": password})
    assert signed_in.status_code == 200
    assert signed_in.json()["access_token"]


def test_make_dev_user_starts_a_dotenv_file_when_there_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    dev_user.main(["ann"])
    assert list(Settings(_env_file=tmp_path / ".env").jwt_users) == ["ann"]


def test_make_dev_user_refuses_a_bad_name_and_a_users_line_that_is_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="is not a user name"):
        dev_user.main(["an n"])
    (tmp_path / ".env").write_text(ENV_PREFIX + "JWT_USERS={alice}\n")
    with pytest.raises(SystemExit, match="JWT_USERS is not JSON"):
        dev_user.main([])
