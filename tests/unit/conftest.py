"""Unit-tier fixtures: use cases built by tests.unit.factory on a temporary SQLite database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database
from tests.unit.factory import Core, build_core


@pytest.fixture
def make_core(tmp_path: Path) -> Iterator[Callable[..., Core]]:
    databases: list[Database] = []

    def factory(**options: Any) -> Core:
        db = Database(f"sqlite:///{tmp_path / f'unit-{len(databases)}.db'}")
        db.upgrade()
        databases.append(db)
        return build_core(db, **options)

    yield factory
    for db in databases:
        db.dispose()


@pytest.fixture
def core(make_core: Callable[..., Core]) -> Core:
    return make_core()
