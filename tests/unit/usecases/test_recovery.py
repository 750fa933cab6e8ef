"""Recovery: intents left without an outcome (a crash between the two rows) are closed once, never re-sent."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from storage.audit import Action, Outcome
from tests.unit.factory import ALICE, BOB, Core


def orphan_intent(core: Core, action: str = Action.CREATE_REQUESTED) -> str:
    """An intent row as a process killed right after writing it would leave behind."""
    operation_id = str(uuid.uuid4())
    core.audit.append(
        ALICE.entry(action, Outcome.INTENT, server_id=1, operation_id=operation_id, details={"name": "pre-deploy"})
    )
    return operation_id


def test_a_recent_intent_is_left_alone(core: Core) -> None:
    orphan_intent(core)
    core.clock.advance(timedelta(minutes=1))
    assert core.recovery.sweep() == []
    assert core.actions() == ["create.requested"]


def test_a_stale_intent_is_closed_as_unknown_once(core: Core) -> None:
    operation_id = orphan_intent(core)
    core.clock.advance(timedelta(minutes=6))

    closed = core.recovery.sweep()

    assert [(item.kind, item.operation_id, item.actor_id) for item in closed] == [
        ("create", operation_id, ALICE.user_id)
    ]
    assert core.actions() == ["create.requested", "create.needs_check"]
    flag = core.audit.query(limit=1)[0]
    assert (flag.outcome, flag.operation_id, flag.actor_id) == ("unknown", operation_id, "system")
    assert core.recovery.sweep() == []  # a second sweep (or replica) finds nothing left to close
    assert core.vps.calls == []  # nothing is re-sent
    assert [item.operation_id for item in core.recovery.unresolved()] == [operation_id]


def test_a_settled_intent_is_not_flagged(core: Core) -> None:
    core.snapshots.create(ALICE, 1, "pre-deploy")
    core.clock.advance(timedelta(hours=1))
    assert core.recovery.sweep() == []
    assert core.recovery.unresolved() == []


def test_a_restore_left_executing_becomes_needs_check(core: Core) -> None:
    view = core.approvals.request(ALICE, 801)
    core.vps.fail_next("restore_snapshot", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):  # the process "dies" inside the VPS.org call: intent, no outcome
        core.approvals.approve(BOB, view.id)
    core.clock.advance(timedelta(minutes=10))
    core.db.clock.offset = timedelta(minutes=10)  # the claim has expired by the database's clock too
    assert [r.outcome for r in core.approvals.flag_stale_executions()] == ["needs_check"]
    core.recovery.sweep()
    assert core.approvals.get(view.id).state == "needs_check"
    assert core.actions().count("restore.needs_check") == 1  # flagged once, by whichever sweep came first
    assert [call[0] for call in core.vps.mutating_calls()] == ["restore_snapshot"]  # sent once, never again
