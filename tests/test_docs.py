"""The docs a newcomer reads in minutes: the baked README is a quick reference, each feature's
depth is a page of docs/ that leaves the bake with its feature, the template's README is short.

Cheap: they read the bakes the `baked` fixture made (cookiecutter only, nothing installed)."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import TEMPLATE, Baked
from .test_template import commands_with_placeholders

README_MAX_LINES = 300
TEMPLATE_README_MAX_LINES = 200

# The docs pages of an option, and the answers that keep them in a bake.
FEATURE_PAGES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "database.md": lambda answers: answers["database"] != "none",
    "messaging.md": lambda answers: answers["messaging"] == "rabbitmq",
    "examples.md": lambda answers: bool(answers["include_examples"]),
    "realtime.md": lambda answers: bool(answers["include_realtime"]),
    "api-keys.md": lambda answers: answers["auth"] == "api_key",
    "jwt.md": lambda answers: answers["auth"] == "jwt",
    "lambda.md": lambda answers: bool(answers["aws_lambda"]),
}
# A Markdown link's target, when it is a file of the project rather than an address or an anchor.
LOCAL_LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)#\s]+)")


def docs_pages(baked: Baked) -> list[Path]:
    return sorted((baked.path / "docs").glob("*.md"))


def broken_links(page: Path) -> list[str]:
    return [
        f"{page.name}: {target}"
        for target in LOCAL_LINK.findall(page.read_text())
        if not (page.parent / target).exists()
    ]


def test_the_readme_is_a_quick_reference_of_at_most_300_lines(baked: Baked) -> None:
    lines = (baked.path / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md: {lines} lines; move the depth to docs/"


def test_every_link_of_the_readme_and_the_docs_resolves_in_the_bake(baked: Baked) -> None:
    readme = (baked.path / "README.md").read_text()
    assert [link for link in LOCAL_LINK.findall(readme) if link.startswith("docs/")] != []
    broken = broken_links(baked.path / "README.md")
    assert [link for page in docs_pages(baked) for link in broken_links(page)] + broken == []


def test_a_feature_page_is_baked_with_its_feature_and_only_then(baked: Baked) -> None:
    expected = {page for page, keep in FEATURE_PAGES.items() if keep(baked.context)}
    baked_pages = {page.name for page in docs_pages(baked)} & set(FEATURE_PAGES)
    assert baked_pages == expected


def test_the_readme_links_every_docs_page(baked: Baked) -> None:
    """A page nobody links is a page nobody finds."""
    readme = (baked.path / "README.md").read_text()
    assert docs_pages(baked) != []
    assert [page.name for page in docs_pages(baked) if f"(docs/{page.name})" not in readme] == []


def test_no_docs_page_has_an_angle_bracket_placeholder_in_a_shell_command(baked: Baked) -> None:
    assert [
        f"{page.name}: {command}"
        for page in docs_pages(baked)
        for command in commands_with_placeholders(page.read_text())
    ] == []


def test_the_template_readme_is_at_most_200_lines() -> None:
    lines = (TEMPLATE / "README.md").read_text().count("\n")
    assert lines <= TEMPLATE_README_MAX_LINES, f"README.md: {lines} lines; depth goes elsewhere"
