"""The layers depend downwards only: an import that runs upwards fails here, naming the module and the line.

Slack → listeners → use cases → storage / VPS.org client. Storage owns the SQL and knows nothing of the bot; use
cases know neither SQL nor Slack; the VPS.org client knows neither Slack nor storage; the Slack side never imports
storage (not even a type or an error: use cases re-export or translate what it needs). Every import counts,
including those inside functions and under `if TYPE_CHECKING:` (a typing-only edge is still an edge).

Outside storage nothing of the bot imports SQLAlchemy or storage's ORM models: repositories hand out frozen rows
and own the unit of work, and a storage failure reaches the bot as storage's own error type. `NOT_YET_OUT_OF_STORAGE`
(the modules that still did, by name) is empty; it only ever shrank (an entry no longer needed fails).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.imports import imported_modules, is_under

ROOT = Path(__file__).resolve().parents[2]

# package (directory) → module prefixes it must never import
BANNED: dict[str, tuple[str, ...]] = {
    "storage": ("bot",),
    "bot/usecases": ("sqlalchemy", "slack_bolt", "slack_sdk", "bot.slack", "bot.mrkdwn"),
    "bot/vps": ("bot.slack", "storage"),
    # The Slack side reaches storage only through use cases and their ports (wired in bot/wiring.py).
    "bot/slack": ("storage", "sqlalchemy"),
}


# Banned everywhere in bot/ (the whole bot sits above storage's boundary).
BANNED_OUTSIDE_STORAGE: tuple[str, ...] = ("storage.models", "sqlalchemy")

# (module, banned prefix) pairs that still cross the boundary: none is left, and none may be added.
NOT_YET_OUT_OF_STORAGE: frozenset[tuple[str, str]] = frozenset()


def crossings(directory: str, banned: tuple[str, ...], root: Path = ROOT) -> set[tuple[str, str]]:
    """(module, banned prefix) for each module under `directory` that imports something under a banned prefix."""
    found = set()
    for path in sorted((root / directory).rglob("*.py")):
        for _line, module in imported_modules(path, root):
            for prefix in banned:
                if is_under(module, prefix):
                    found.add((path.relative_to(root).as_posix(), prefix))
    return found


def violations(directory: str, banned: tuple[str, ...], root: Path = ROOT) -> list[str]:
    problems = []
    for path in sorted((root / directory).rglob("*.py")):
        for line, module in imported_modules(path, root):
            for prefix in banned:
                if is_under(module, prefix):
                    where = f"{path.relative_to(root).as_posix()}:{line}"
                    problems.append(f"{where} imports {module} ({directory} must not use {prefix})")
    return sorted(set(problems))


@pytest.mark.parametrize("directory", sorted(BANNED))
def test_no_import_runs_upwards(directory: str) -> None:
    assert (ROOT / directory).is_dir(), f"{directory} moved: update BANNED in this test"
    problems = violations(directory, BANNED[directory])
    assert not problems, "imports that run upwards:\n" + "\n".join(problems)


def test_nothing_outside_storage_imports_sqlalchemy_or_the_orm_models() -> None:
    crossing = crossings("bot", BANNED_OUTSIDE_STORAGE)
    new = sorted(crossing - NOT_YET_OUT_OF_STORAGE)
    assert not new, "imports past storage's boundary:\n" + "\n".join(problem(*pair) for pair in new)
    gone = sorted(NOT_YET_OUT_OF_STORAGE - crossing)
    assert not gone, "no longer imported: remove from NOT_YET_OUT_OF_STORAGE:\n" + "\n".join(map(str, gone))


def problem(module: str, prefix: str) -> str:
    lines = [found for found in violations("bot", (prefix,)) if found.startswith(f"{module}:")]
    return "\n".join(lines) or f"{module} imports {prefix}"


def test_the_boundary_check_sees_an_orm_model_or_sqlalchemy_import(tmp_path: Path) -> None:
    """A use case importing a model, or a listener catching SQLAlchemy's errors, is found."""
    (tmp_path / "bot" / "usecases").mkdir(parents=True)
    (tmp_path / "bot" / "slack").mkdir(parents=True)
    (tmp_path / "bot" / "usecases" / "case.py").write_text(
        "from storage.models import ApprovalRequest\nfrom storage.approvals import ApprovalRequests\n", encoding="utf-8"
    )
    (tmp_path / "bot" / "slack" / "edge.py").write_text(
        "def later():\n    from sqlalchemy.exc import SQLAlchemyError\n", encoding="utf-8"
    )
    assert crossings("bot", BANNED_OUTSIDE_STORAGE, root=tmp_path) == {
        ("bot/usecases/case.py", "storage.models"),
        ("bot/slack/edge.py", "sqlalchemy"),
    }


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """A check that cannot fail is worthless: plain, from, relative, in-function and TYPE_CHECKING imports count."""
    package = tmp_path / "storage"
    package.mkdir()
    (package / "sneaky.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import bot.config\n"
        "from bot.redaction import redact\n"
        "from bot import slack\n"
        "if TYPE_CHECKING:\n"
        "    from bot.runtime import Services\n"
        "def later():\n"
        "    import bot.usecases\n"
        "from . import db\n"
        "import botany\n",
        encoding="utf-8",
    )
    found = violations("storage", ("bot",), root=tmp_path)
    assert {problem.split(" ")[0] for problem in found} == {f"storage/sneaky.py:{line}" for line in (2, 3, 4, 6, 8)}
    assert any("imports bot.slack" in problem for problem in found)
    assert not any("storage.db" in problem or "botany" in problem for problem in found)


def test_the_slack_side_importing_storage_fails_the_check(tmp_path: Path) -> None:
    """bot/slack must reach storage through use cases: a typing-only or error-catching import counts too."""
    package = tmp_path / "bot" / "slack"
    package.mkdir(parents=True)
    (package / "edge.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from bot.usecases.errors import AuditTrailBroken\n"
        "from storage.audit import ChainHeadMissing\n"
        "if TYPE_CHECKING:\n"
        "    from storage.audit import AuditRecord\n"
        "import storageless\n",
        encoding="utf-8",
    )
    found = violations("bot/slack", BANNED["bot/slack"], root=tmp_path)
    assert {problem.split(" ")[0] for problem in found} == {f"bot/slack/edge.py:{line}" for line in (3, 5)}
