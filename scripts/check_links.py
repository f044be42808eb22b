"""Check the relative links of the Markdown front pages and the documentation: every target exists,
and an ``#anchor`` into a Markdown file names one of its headings.

Sphinx checks the links between documentation pages (``make docs`` runs it with ``-n``); this script
covers what Sphinx does not see: README.md, results/README.md and every study's README, and links from
the pages to files of the repository. Exit status 1 with one line per broken link.

    python scripts/check_links.py [FILE.md ...]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's and MyST's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE)}


def files() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "results" / "README.md", *sorted((ROOT / "results").glob("*/README.md")),
             *sorted((ROOT / "docs").glob("*.md"))]
    return [p for p in found if p.is_file()]


def broken_links(path: Path) -> list[str]:
    """``FILE: link (why)`` for every relative link of ``path`` that does not resolve."""
    problems = []
    text = FENCE.sub("", path.read_text())
    for match in LINK.finditer(text):
        link = match.group(1) or match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", link) or link.startswith("mailto:"):
            continue  # an external address
        target, _, anchor = link.partition("#")
        resolved = (path.parent / target).resolve() if target else path
        where = f"{path.relative_to(ROOT)}: {link}"
        if not resolved.exists():
            problems.append(f"{where} (no such file or directory)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where} (no heading with anchor #{anchor} in {resolved.relative_to(ROOT)})")
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or files()
    problems = [p for path in paths for p in broken_links(path)]
    for problem in problems:
        print(f"broken link: {problem}")
    print(f"checked the links of {len(paths)} files: {len(problems)} broken")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
