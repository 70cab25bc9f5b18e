"""The option combinations the suite bakes: every value of every option at least once, plus the
risky pairs (nothing optional at all; long names with quotes and non-ASCII text, with every
option on but aws_lambda, which the bake refuses with messaging=rabbitmq)."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

COMBINATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "py3.11-lambda-no_examples-no_realtime": {  # Lambda on PostgreSQL
        "python_version": "3.11",
        "include_examples": False,
        "include_realtime": False,
        "aws_lambda": True,
    },
    "py3.13-jwt-redis-no_realtime-no_database-rabbitmq": {
        "python_version": "3.13",
        "include_realtime": False,
        "auth": "jwt",
        "rate_limit_storage": "redis",
        "database": "none",
        "messaging": "rabbitmq",
    },
    "py3.13-api_key-lambda-no_examples-sqlite": {
        "python_version": "3.13",  # 3.12 is default's; coverage's tracing is slowest on 3.12
        "include_examples": False,
        "auth": "api_key",
        "aws_lambda": True,
        "database": "sqlite",
    },
    "py3.11-long_quoted_names-all_options_but_lambda": {
        "python_version": "3.11",
        "auth": "jwt",
        "rate_limit_storage": "redis",
        "messaging": "rabbitmq",
        "project_name": 'Motor de "Precios" Mayoristas — ñandú',
        "project_slug": "wholesale-pricing-engine-for-stores-v2",
        "description": "Prices \"wholesale\" items; it's <fast> & safe \\ 100%",
        "author_name": "Seán O'Brien",
        "author_email": "sean.obrien@example.co.uk",
        "version": "2.0.0rc1",
    },
}


# Checks that no option changes run once, in one of these bakes: the lighter ones, so that the
# two test workers end together (default and the long-names bake carry the most already).
DEFAULTS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "cookiecutter.json").read_text(encoding="utf-8")
)
LAMBDA_BAKE = "py3.11-lambda-no_examples-no_realtime"
API_KEY_BAKE = "py3.13-api_key-lambda-no_examples-sqlite"
JWT_BAKE = "py3.13-jwt-redis-no_realtime-no_database-rabbitmq"


def first_with(option: str, value: Any) -> str:
    """The first combination where `option` is `value` (cookiecutter.json's default if unset)."""
    return next(n for n, c in COMBINATIONS.items() if c.get(option, DEFAULTS[option]) == value)


# The slow checks on a real database run once per `database` value, in its first combination
# here, not in every combination.
def first_with_database(value: str) -> str:
    return next(n for n, c in COMBINATIONS.items() if c.get("database", "postgresql") == value)


# Likewise the checks on a real RabbitMQ: once per `database` value that changes how events
# leave (an outbox, or a publish after the write), in the first combination with messaging on.
def first_with_messaging(database: str) -> str | None:
    return next(
        (
            name
            for name, c in COMBINATIONS.items()
            if c.get("messaging") == "rabbitmq" and c.get("database", "postgresql") == database
        ),
        None,
    )


# The realtime endpoints' checks on a real server that need no other option: once, in the first
# combination with them.
def first_with_realtime() -> str:
    return next(n for n, c in COMBINATIONS.items() if c.get("include_realtime", True))


# The characters cache on a real Redis shared by two services: once, in the first combination
# with the examples.
def first_with_examples() -> str:
    return next(n for n, c in COMBINATIONS.items() if c.get("include_examples", True))


def combination_params() -> list[Any]:
    """One pytest param per combination, each kept on one xdist worker (bake once, test many).

    COMBINATION=<name> keeps only that one (the template's CI runs one per matrix job).
    """
    only = os.environ.get("COMBINATION")
    if only and only not in COMBINATIONS:
        raise ValueError(f"COMBINATION={only!r} is not one of {sorted(COMBINATIONS)}")
    return [
        pytest.param(context, id=name, marks=pytest.mark.xdist_group(name))
        for name, context in COMBINATIONS.items()
        if not only or name == only
    ]
