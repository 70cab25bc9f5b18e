"""Check the answers while cookiecutter renders them, before any folder exists.

A bad answer stops the bake with our one-line message (the CLI prints a FailedHookException's
text alone) and, unlike a failing pre-generation hook, cannot leave parent folders behind for a
slug such as 'a/b'. The checks themselves live in hooks/pre_gen_project.py, which runs them again
for bakes that skip this rendering (replays).

Cookiecutter cannot ask one question again: the message's second line is the command that bakes
with every answer given, the bad one corrected when the right value is certain, so nothing is
typed twice. It is the command the user typed (every option kept: --output-dir, --config-file,
...), with --no-input and the answers: cookiecutter tells a template nothing of its command line
before the answers are rendered, so it is read from sys.argv with cookiecutter's own parser.
"""

import shlex
import sys
from pathlib import Path
from typing import Any

import click
from cookiecutter.cli import main as cookiecutter_cli
from cookiecutter.exceptions import FailedHookException
from jinja2 import Environment
from jinja2.ext import Extension
from slugify import slugify

from hooks.pre_gen_project import MAX_NAME, check_package_name, find_bad_answer

# The folder cookiecutter reads the template from: the local clone, or its own clone of a
# repository given as gh:... or a URL (kept in ~/.cookiecutters).
TEMPLATE = Path(__file__).resolve().parent
# The folder cookiecutter was started in: this module is first imported while the answers are
# rendered, before cookiecutter moves into the template's folder to render files and hooks.
STARTED_IN = Path.cwd()


def package_from(slug: str) -> str:
    """The package name cookiecutter.json derives from a slug."""
    return slug.replace("-", "_").replace(".", "_")


def correct(answers: dict[str, Any], key: str) -> dict[str, str]:
    """The answers to change so that the bad one passes, when that is certain; else none."""
    if key == "project_slug":
        slug = slugify(str(answers[key]), max_length=MAX_NAME, word_boundary=True)
        corrected = {"project_slug": slug}
        if answers["package_name"] == package_from(str(answers[key])):  # derived, not typed
            corrected["package_name"] = package_from(slug)
        return corrected if slug and find_bad_answer({**answers, **corrected}) is None else {}
    if key == "package_name":
        package = package_from(str(answers["project_slug"]))
        if package != answers[key] and check_package_name(package) is None:
            return {"package_name": package}
    return {}


def typed_options(argv: list[str]) -> tuple[list[str], str] | None:
    """The options and the template of a cookiecutter command line, or None when this process
    is not cookiecutter's command (cookiecutter called from Python, by cruft or a script)."""
    program = Path(argv[0]) if argv else Path()
    if "cookiecutter" not in (program.stem, program.parent.name):
        return None
    try:
        context = cookiecutter_cli.make_context("cookiecutter", argv[1:], resilient_parsing=True)
    except click.ClickException:
        return None
    options = ["--no-input"]
    for param in cookiecutter_cli.params:
        value = context.params.get(param.name or "")
        if not isinstance(param, click.Option) or value in (None, False, param.default):
            continue
        name = max(param.opts, key=len)  # --output-dir rather than -o: the command explains itself
        if name != "--no-input":
            options += [name] if param.is_flag else [name, str(value)]
    template = context.params.get("template")
    return (options, template) if template else None


def bake_command(answers: dict[str, Any]) -> str:
    options, template = typed_options(sys.argv) or (["--no-input"], str(TEMPLATE))
    words = ["cookiecutter", *options, template]
    for key, value in answers.items():
        if not key.startswith("_"):
            words.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
    return shlex.join(words)


def refuse_bad_answers(answers: dict[str, Any]) -> str:
    bad = find_bad_answer(answers)
    if bad is None:
        return "yes"
    key, error = bad
    corrected = correct(answers, key)
    if corrected:
        changes = " ".join(f"{name}={value}" for name, value in corrected.items())
        how = f"Bake with {changes} and your other answers"
    else:
        how = f"Correct {key} in this command, which has your other answers"
    command = bake_command({**answers, **corrected})
    raise FailedHookException(f"ERROR: {error}\n{how}: {command}")


class AnswerChecks(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["refuse_bad_answers"] = refuse_bad_answers
        environment.globals["started_in"] = str(STARTED_IN)
