"""Check the answers while cookiecutter renders them, before any folder exists.

A bad answer stops the bake with our one-line message (the CLI prints a FailedHookException's
text alone) and, unlike a failing pre-generation hook, cannot leave parent folders behind for a
slug such as 'a/b'. The checks themselves live in hooks/pre_gen_project.py, which runs them again
for bakes that skip this rendering (replays).
"""

from typing import Any

from cookiecutter.exceptions import FailedHookException
from jinja2 import Environment
from jinja2.ext import Extension

from hooks.pre_gen_project import find_error


def refuse_bad_answers(answers: dict[str, Any]) -> str:
    error = find_error(answers)
    if error:
        raise FailedHookException(f"ERROR: {error}")
    return "yes"


class AnswerChecks(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["refuse_bad_answers"] = refuse_bad_answers
