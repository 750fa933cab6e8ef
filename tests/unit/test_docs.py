"""The documentation agrees with the code: every setting in `.env.example` is in the configuration table of
docs/operations.md and nothing else is, the README stays short and links every page, and no link is broken.

Other engineers add `docs/notes-<task>.md` files for the lead to fold in; those are not pages and are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
OPERATIONS = DOCS / "operations.md"

README_MAX_LINES = 200
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if not p.name.startswith("notes-"))


def env_example_names() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))


def section(text: str, heading: str) -> str:
    """The body of a `## heading` section, up to the next heading of level 2."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def configuration_table_names() -> set[str]:
    """Variable names in the first column of the configuration table (a row may name several)."""
    rows = [line for line in section(OPERATIONS.read_text(), "Configuration").splitlines() if line.startswith("| `")]
    assert rows, "the configuration table has no rows"
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def test_every_env_example_setting_is_in_the_configuration_table_and_nothing_else() -> None:
    in_example = env_example_names()
    in_table = configuration_table_names()
    assert in_example, "found no settings in .env.example: the scan is broken"
    assert not in_example - in_table, f"in .env.example, missing from docs/operations.md: {in_example - in_table}"
    assert not in_table - in_example, f"in docs/operations.md, missing from .env.example: {in_table - in_example}"


def test_readme_is_short_keeps_the_quick_start_and_links_every_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) < README_MAX_LINES
    assert "make run" in text and "make test" in text
    linked = {target.split("#")[0] for target in LINK.findall(text)}
    for page in pages():
        assert f"docs/{page.name}" in linked, f"README does not link docs/{page.name}"
    assert "BENCHMARKS.md" in linked


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for source in [README, *pages()]:
        for target in LINK.findall(source.read_text()):
            if re.match(r"[a-z]+:", target):  # https:, mailto: — not ours to check
                continue
            file_part, _, fragment = target.partition("#")
            path = (source.parent / file_part).resolve() if file_part else source
            if not path.exists():
                broken.append(f"{source.name}: {target} (no such file)")
            elif fragment and path.suffix == ".md" and fragment not in anchors(path):
                broken.append(f"{source.name}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_anchor_rule_matches_githubs() -> None:
    # A check that cannot fail is a defect: pin the slug rule on headings whose GitHub anchors are known.
    assert github_anchor("Reliability: when Slack, VPS.org or the database fail") == (
        "reliability-when-slack-vpsorg-or-the-database-fail"
    )
    assert github_anchor("Slack's rate limits for posts") == "slacks-rate-limits-for-posts"
    assert github_anchor("The claim, and fencing") == "the-claim-and-fencing"
