"""Use cases write no chat markup: what they say is `Text`, and only the Slack side decides how it looks.

A string literal in `bot/usecases` (docstrings aside) holding a backtick, `*stressed*` words, an `:emoji:` code, a
`<@…>`/`<#…>`/`<!…>` sequence or a `/snapshot` hint is Slack speaking in the wrong layer: use `code()`,
`emphasis()`, `alarm()`, `mention()`, `channel_link()` or `command()` from bot/usecases/wording.py instead.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MARKUP = re.compile(r"`|(?<![\w*])\*\w[^*]*\*(?!\w)|:[a-z_]+:|<[@#!]|/snapshot\b")
RECORD_FORM = "bot/usecases/wording.py"  # writes the plain-text record form, backticks included


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def markup_in_use_case_literals(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted((root / "bot" / "usecases").rglob("*.py")):
        where = path.relative_to(root).as_posix()
        if where == RECORD_FORM:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
            if is_text and MARKUP.search(node.value):
                found.append(f"{where}:{node.lineno} {node.value[:60]!r}")
    return sorted(found)


def test_use_case_literals_hold_no_slack_markup() -> None:
    assert markup_in_use_case_literals() == []


def test_the_check_sees_markup(tmp_path: Path) -> None:
    package = tmp_path / "bot" / "usecases"
    package.mkdir(parents=True)
    (package / "bad.py").write_text(
        '"""Docstrings may say `code`."""\n'
        'A = "use *Cancel* to withdraw"\n'
        'B = f"Snapshot `{name}` deleted"\n'
        'C = ":rotating_light: look"\n'
        'D = "try /snapshot list"\n'
        'E = "ok, nothing here: 3 * 4"\n'
    )
    assert sorted({line.split(" ")[0] for line in markup_in_use_case_literals(tmp_path)}) == [
        "bot/usecases/bad.py:2",
        "bot/usecases/bad.py:3",
        "bot/usecases/bad.py:4",
        "bot/usecases/bad.py:5",
    ]
