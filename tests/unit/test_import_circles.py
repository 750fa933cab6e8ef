"""No import circles in bot/ and storage/: modules that import each other (directly or round a longer loop),
even from inside a function, under `if TYPE_CHECKING:` or through `importlib.import_module`, fail here with the
loop and the line of each import in it (the walker: tests/imports.py)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from tests.imports import import_circles, import_graph

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "storage")


def described(graph: dict[str, dict[str, int]], circle: list[str]) -> str:
    steps = [f"{a} (line {graph[a][b]}) → {b}" for a, b in pairwise(circle)]
    return "  " + "\n  ".join(steps)


def test_no_module_in_bot_or_storage_is_part_of_an_import_circle() -> None:
    graph = import_graph(ROOT, PACKAGES)
    assert "bot.slack.app" in graph and "storage.db" in graph  # the walk found the code
    circles = import_circles(graph)
    assert not circles, "import circles:\n" + "\n\n".join(described(graph, c) for c in circles)


def test_the_check_finds_circles_however_the_import_hides(tmp_path: Path) -> None:
    """A check that cannot fail is worthless: a loop through a function-level import, a TYPE_CHECKING import and
    importlib each count, and a module importing its own package's `__init__` does not."""
    package = tmp_path / "bot"
    (package / "cli").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "wiring.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.background import Ticker\n",
        "background.py": "def later():\n    from bot import wiring\n",
        "a.py": "import bot.b\n",
        "b.py": "from . import c\n",
        "c.py": "def f():\n    import bot.a\n",
        "cli/__init__.py": "from bot.cli.commands import add\n",
        "cli/commands.py": "import importlib\ndef run():\n    importlib.import_module('bot.cli.operator')\n",
        "cli/operator.py": "from bot.cli.commands import add\n",
        "alone.py": "import bot\nimport bot.cli\n",
    }
    for name, text in files.items():
        (package / name).write_text(text, encoding="utf-8")
    graph = import_graph(tmp_path, ["bot"])
    assert import_circles(graph) == [
        ["bot.a", "bot.b", "bot.c", "bot.a"],
        ["bot.background", "bot.wiring", "bot.background"],
        ["bot.cli.commands", "bot.cli.operator", "bot.cli.commands"],
    ]
    assert "line 2" in described(graph, ["bot.background", "bot.wiring", "bot.background"])
