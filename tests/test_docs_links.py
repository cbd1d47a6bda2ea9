"""Every relative link in the README, the changelog and `docs/` resolves: the file exists and, for a
`#anchor`, the target page has a heading with that GitHub-style slug.

Links inside code (fenced blocks and `inline code`) are not links; web addresses are not checked (the
tests stay offline)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target) or [text](target "title"); the text may hold `code` but not nested brackets.
LINK = re.compile(r"(?<!\\)\[(?:[^\[\]]|\\[\[\]])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)


def without_code(markdown: str) -> str:
    """The text with fenced code blocks and inline code blanked out, so `[x](y)` in code is no link."""
    text = FENCE.sub("", markdown)
    return INLINE_CODE.sub("", text)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed, spaces to
    hyphens (letters, digits, `_` and `-` of any script stay)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in " -" or category[0] in {"L", "N"} or category in {"Mn", "Mc", "Me", "Pc"}:
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every anchor a page offers: its headings' slugs (a repeated one gets -1, -2, …) and <a id>."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for match in HEADING.finditer(FENCE.sub("", markdown)):
        slug = github_slug(match.group(2))
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    found.update(EXPLICIT_ANCHOR.findall(markdown))
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of `page` that do not resolve, each as `target: why`."""
    problems = []
    for target in LINK.findall(without_code(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto:, …: not checked offline
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            problems.append(f"{target}: no such file")
            continue
        if anchor:
            if destination.suffix != ".md":
                problems.append(f"{target}: an anchor into a file that is not Markdown")
            elif anchor not in anchors(destination.read_text(encoding="utf-8")):
                problems.append(f"{target}: no heading with that anchor in {destination.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_docs_pages_are_found() -> None:
    """The walk above would pass on no pages at all: the split's pages must be among them."""
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/ARCHITECTURE.md", "docs/operations.md", "docs/commands.md"} <= names


def test_the_readme_links_every_docs_page() -> None:
    """A page nobody links to is a page nobody finds."""
    readme = without_code((ROOT / "README.md").read_text(encoding="utf-8"))
    linked = {target.partition("#")[0] for target in LINK.findall(readme)}
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    assert pages - linked == set()


def test_the_checker_finds_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## The `x` part: rows, and more!\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Ünïcode heading\n\n"
        "[fine](other.md#the-x-part-rows-and-more) [also fine](#ünïcode-heading) "
        "[web](https://example.com/missing) `[in code](gone.md)`\n\n"
        "```\n[in a block](gone.md)\n```\n\n"
        "[missing file](gone.md) [missing anchor](other.md#nope) [missing here](#nowhere)\n"
    )
    assert broken_links(page) == [
        "gone.md: no such file",
        "other.md#nope: no heading with that anchor in other.md",
        "#nowhere: no heading with that anchor in page.md",
    ]


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("What `/imagine` does", "what-imagine-does"),
        ("Buttons on the bot's messages", "buttons-on-the-bots-messages"),
        ('Styles and "Use as reference"', "styles-and-use-as-reference"),
        ("Personal use: quota and bans", "personal-use-quota-and-bans"),
        ("Adding or changing a text (developers)", "adding-or-changing-a-text-developers"),
        ("What limits one PostgreSQL-backed deployment", "what-limits-one-postgresql-backed-deployment"),
    ],
)
def test_slugs_follow_github(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug
