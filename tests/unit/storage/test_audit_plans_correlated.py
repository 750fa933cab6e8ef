"""`/snapshot audit` stays an index seek when users, servers and actions depend on each other (issue 27 §5).

On data where `system` is the only writer of `create.completed` and writes nothing else, `user:system
action:list` matches nothing although both values are common. PostgreSQL multiplied the single-column
frequencies, expected thousands of matches and read the primary key backwards, filtering every row (198 ms at
1,000,000 events); the pair statistics of migration 0010 let it seek the composite index. The plans are judged as
in test_audit_plans: run, and by the rows each read of the table touched.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

from bench.audit_correlated import make_correlated_entries
from storage.audit import AuditLog
from storage.db import Database
from tests.unit.storage.test_audit_plans import captured_selects, filled_database, plan_problems

ROWS = 40_000
pytestmark = pytest.mark.xdist_group("audit_plans")

# Rare or empty combinations of common values, and one common combination for contrast.
CASES = (
    {"actor_id": "system", "action": "list"},  # system never lists
    {"actor_id": "U0USER003", "action": "create.completed"},  # only system writes it
    {"actor_id": "system", "action": "refused"},  # a prefix system never writes under
    {"actor_id": "U0USER003", "server_id": 10_017},  # not one of U0USER003's own servers
    {"actor_id": "system", "server_id": 10_005, "action": "list"},
    {"actor_id": "U0USER003", "server_id": 10_006, "action": "restore.executed"},  # own server, rare action
    {"actor_id": "U0USER003", "server_id": 10_007, "action": "refused"},
    {"server_id": 10_003, "action": "create.completed"},
    {"actor_id": "U0USER003", "action": "list"},
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def correlated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with filled_database(
        request.param,
        tmp_path_factory,
        "test_plans_corr",
        ROWS,
        lambda start: list(make_correlated_entries(5000, seed=start, first=start)),
    ) as db:
        yield db


@pytest.mark.parametrize("filters", CASES, ids=lambda f: " ".join(f"{k}={v}" for k, v in f.items()))
def test_rare_combinations_of_common_values_are_index_seeks(correlated: Database, filters: dict[str, Any]) -> None:
    log = AuditLog(correlated)
    statements = captured_selects(correlated, functools.partial(log.query, limit=21, **filters))
    assert statements
    assert plan_problems(correlated, statements, filtered=True) == []
