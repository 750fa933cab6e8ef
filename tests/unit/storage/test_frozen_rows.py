"""Repositories hand out frozen rows read inside their own transaction, never live ORM objects: a use case cannot
change a stored row by assigning an attribute, and nothing it holds reloads itself later."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from storage.db import Database
from storage.operations import Operation, OperationKind, TrackedOperations


def test_tracked_operations_are_frozen_rows(database: Database) -> None:
    operations = TrackedOperations(database)
    now = datetime.now(UTC)
    fields = {"server_id": 7, "server_name": "web-1", "snapshot_id": 801, "actor_id": "U0ALICE"}
    started = operations.insert_once(kind=OperationKind.CREATE, now=now, deadline=now + timedelta(hours=1), **fields)
    again = operations.insert_once(kind=OperationKind.CREATE, now=now, deadline=now + timedelta(hours=1), **fields)
    claimed = operations.claim("replica-a", now, timedelta(minutes=1), limit=10)
    found = [started, again, *claimed, operations.get(started.id), *operations.active()]
    assert all(type(row) is Operation for row in found)
    assert again == started and claimed[0].lease_owner == "replica-a"
    with pytest.raises(dataclasses.FrozenInstanceError):
        started.state = "done"  # type: ignore[misc]
