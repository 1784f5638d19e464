"""Every relative link in README.md and docs/*.md resolves: the file exists and its #anchor is a heading.

Sections move between pages; a link left pointing at the old place must fail here, not in a reader's
browser. Anchors are GitHub's: the heading's text, lower-cased, punctuation dropped, spaces as hyphens,
and a repeated heading numbered (-1, -2, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^ *(```|~~~).*?^ *\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6} +(?P<text>.+?) *#* *$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"(?P<id>[^\"]+)\"")
INLINE_LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(?P<target>\S+)", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def _without_code(text: str) -> str:
    """The text with code blocks and code spans blanked, line numbers kept."""
    return CODE_SPAN.sub(_blank, FENCE.sub(_blank, text))


def slug(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
    text = text.replace("`", "").replace("*", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    found: set[str] = set(HTML_ANCHOR.findall(text))
    for match in HEADING.finditer(FENCE.sub("", text)):
        base = slug(match["text"])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[Link]:
    text = _without_code(path.read_text(encoding="utf-8"))
    links: list[Link] = []
    for pattern in (INLINE_LINK, REFERENCE_LINK):
        for match in pattern.finditer(text):
            target = match["target"].strip("<>")
            if not EXTERNAL.match(target):
                links.append(Link(path, text.count("\n", 0, match.start()) + 1, target))
    return links


def broken(link: Link) -> str | None:
    """Why the link does not resolve, or None when it does."""
    file_part, _, anchor = link.target.partition("#")
    target = (link.source.parent / file_part).resolve() if file_part else link.source
    if not target.exists():
        return f"no such file: {file_part}"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"no heading #{anchor} in {target.name}"
    return None


def dead_links(root: Path) -> list[str]:
    return [
        f"{link.source.relative_to(root)}:{link.line}: {link.target}: {why}"
        for path in documents(root)
        for link in relative_links(path)
        if (why := broken(link)) is not None
    ]


def test_every_relative_link_in_the_docs_resolves() -> None:
    # GIVEN the README and every page under docs/, with their relative links
    links = [link for path in documents(ROOT) for link in relative_links(path)]
    assert len(links) > 20, "the link scan found almost nothing: the pattern no longer matches"

    # WHEN each link is followed THEN its file exists and its anchor is a heading there
    assert dead_links(ROOT) == []


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("docs/moved.md", "no such file: docs/moved.md"),
        ("docs/page.md#old-section", "no heading #old-section in page.md"),
        ("#missing", "no heading #missing in README.md"),
    ],
)
def test_a_dead_link_is_reported(tmp_path: Path, target: str, why: str) -> None:
    # GIVEN a tree whose README links to a moved page, a renamed section or a missing local heading
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## New section\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(f"# Readme\n\nSee [it]({target}).\n", encoding="utf-8")

    # WHEN its links are checked THEN the dead one is named with its line and why
    assert dead_links(tmp_path) == [f"README.md:3: {target}: {why}"]


def test_links_and_headings_in_code_are_ignored(tmp_path: Path) -> None:
    # GIVEN a page whose only "link" and "heading" are inside code, and a live link to a repeated heading
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# Readme\n\n## Tests\n\n## Tests\n\n"
        "```bash\n# not-a-heading\necho '[x](gone.md)'\n```\n\n"
        "`[y](gone.md)` and [z](#tests-1) and [w](#not-a-heading)\n",
        encoding="utf-8",
    )

    # WHEN its links are checked THEN only the link to a comment in a code block is dead
    assert dead_links(tmp_path) == ["README.md:12: #not-a-heading: no heading #not-a-heading in README.md"]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        (
            "Configuration reference (`cdk.json` → `context.invoker`)",
            "configuration-reference-cdkjson--contextinvoker",
        ),
        ("The `invoker` command line", "the-invoker-command-line"),
        (
            "How the event source emulator behaves (Lambda's rules)",
            "how-the-event-source-emulator-behaves-lambdas-rules",
        ),
        ("Tests of `MAX_CONCURRENCY`", "tests-of-max_concurrency"),
    ],
)
def test_anchors_are_githubs(heading: str, anchor: str) -> None:
    # GIVEN a heading WHEN its anchor is computed THEN it is the one GitHub renders
    assert slug(heading) == anchor
