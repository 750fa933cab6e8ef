"""The composition root's shape: the ticker reports through the Announcer it is given and imports nothing from
Slack; use cases are built by the root, never by looking themselves up."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.background import Announcer, Ticker
from bot.runtime import Core
from bot.slack.announcer import SlackAnnouncer
from bot.usecases.approval_reminders import NudgeDelivery
from tests.app_fixtures import ALICE, Harness
from tests.imports import imported_modules as walk_imports

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, including imports inside functions (where upward edges used to hide)."""
    return {module for _, module in walk_imports(path, ROOT)}


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_ticker_imports_nothing_from_slack_or_the_listeners() -> None:
    imported = imported_modules(ROOT / "bot" / "background.py")
    upward = {m for m in imported if within(m, "bot.slack", "slack_sdk", "slack_bolt")}
    assert upward == set()


def test_use_cases_never_import_the_runtime_the_root_or_slack() -> None:
    for path in sorted((ROOT / "bot" / "usecases").rglob("*.py")):
        upward = {
            m
            for m in imported_modules(path)
            if within(m, "bot.runtime", "bot.wiring", "bot.slack", "slack_sdk", "slack_bolt")
        }
        assert upward == set(), path.name


def test_the_slack_side_reaches_no_storage_object_through_the_core() -> None:
    """Listeners call use cases on the Core: `core.db` and `core.audit` are storage objects (use `core.healthy()`,
    `core.audit_reader`)."""
    reached = []
    for path in sorted((ROOT / "bot" / "slack").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("db", "audit")
                and isinstance(node.value, ast.Name)
                and node.value.id == "core"
            ):
                reached.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno} core.{node.attr}")
    assert reached == []


def test_the_slack_announcer_is_an_announcer() -> None:
    def methods(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_") and callable(getattr(cls, name))}

    assert methods(Announcer) <= methods(SlackAnnouncer)


class Recorder:
    """An Announcer that only remembers what it was told."""

    def __init__(self) -> None:
        self.results: list[Any] = []
        self.recovered_items: list[Any] = []
        self.events: list[Any] = []

    def decided(self, result: Any) -> None:
        self.results.append(result)

    def recovered(self, items: Sequence[Any]) -> None:
        self.recovered_items.extend(items)

    def tracked(self, events: list[Any]) -> None:
        self.events.extend(events)

    def scheduled(self, events: list[Any]) -> None:
        self.events.extend(events)

    def nudge(self, nudge: Any) -> NudgeDelivery:
        self.events.append(nudge)
        return NudgeDelivery(True)


def test_the_ticker_tells_its_announcer_and_slack_hears_nothing(harness: Harness) -> None:
    h = harness
    h.run("restore 801", user=ALICE)
    core: Core = h.bot.core
    real_clock = core.approvals.clock
    core.approvals.clock = lambda: real_clock() + timedelta(minutes=61)
    posted = len(h.slack.calls)
    recorder = Recorder()
    Ticker(core, recorder, 60).tick()
    assert [(r.request.id, r.outcome) for r in recorder.results] == [(1, "expired")]
    assert "restore.expired" in h.actions()
    # The announcer is the ticker's only way out: with a recorder, Slack is not called at all.
    assert len(h.slack.calls) == posted
