"""The storage seams of issue 15: the injected redactor, AuditLog's "flagged since" query, the audited-call helper
and the one Action vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.auditing import audit_log
from bot.usecases.approvals import action_for
from bot.usecases.audited_call import CallResult, audited_call
from bot.usecases.errors import AuditTrailBroken
from bot.vps.errors import Unavailable
from storage.audit import APPROVAL_ACTIONS, Action, AuditEntry, AuditLog, ChainHeadMissing, Outcome
from storage.db import Database

TOKEN = "xoxb-1234-5678-abcdefSECRET"


def test_storage_stores_what_it_is_given_and_the_bots_audit_log_masks_credentials(database: Database) -> None:
    plain = AuditLog(database).append(AuditEntry("list", "info", "U1", actor_name="x", details={"t": "fine"}))
    assert plain.details == {"t": "fine"}
    masked = audit_log(database).append(
        AuditEntry("list", "info", "U1", actor_name=f"alice {TOKEN}", details={"error": {TOKEN}, "why": TOKEN})
    )
    assert "SECRET" not in repr(masked)
    assert masked.actor_name == "alice xoxb-[redacted]"
    assert audit_log(database).verify().ok


def test_the_bots_audit_log_raises_a_missing_chain_head_as_a_use_case_error(database: Database) -> None:
    """Listeners know only use-case errors: storage's ChainHeadMissing reaches them as AuditTrailBroken."""
    log = audit_log(database)
    log.append(AuditEntry("list", "info", "U1"))
    with database.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_chain_head")
    for append in (
        lambda: log.append(AuditEntry("list", "info", "U1")),
        lambda: log.append_many([AuditEntry("list", "info", "U1")]),
    ):
        with pytest.raises(AuditTrailBroken) as raised:
            append()
        assert isinstance(raised.value.__cause__, ChainHeadMissing)
    with database.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar() == 1


def _flag(log: AuditLog, action: str, details: dict[str, object], outcome: str = Outcome.UNKNOWN) -> int:
    return log.append(AuditEntry(action, outcome, "system", operation_id="op", details=details)).id


def test_flagged_since_finds_only_rows_that_really_carry_the_marker(database: Database) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    log = AuditLog(database, clock=lambda: now)
    wanted = _flag(log, Action.CREATE_NEEDS_CHECK, {"recovered": True, "name": "web"})
    _flag(log, Action.RESTORE_NEEDS_CHECK, {"reason": "claim expired after sending"})  # the flagger's, not recovery's
    _flag(log, Action.DELETE_NEEDS_CHECK, {"name": '","recovered":true,"x":"'})  # a hostile name cannot fake it
    _flag(log, Action.DELETE_NEEDS_CHECK, {"nested": {"recovered": True}})  # only the top level counts
    _flag(log, Action.DELETE_NEEDS_CHECK, {"recovered": False})
    _flag(log, Action.CREATE_NEEDS_CHECK, {"recovered": True}, outcome=Outcome.FAILED)
    _flag(log, Action.CREATE_FAILED, {"recovered": True})
    actions = [Action.CREATE_NEEDS_CHECK, Action.DELETE_NEEDS_CHECK, Action.RESTORE_NEEDS_CHECK]

    found = log.flagged_since(actions, now - timedelta(days=1), outcome=Outcome.UNKNOWN, marker="recovered")

    assert [record.id for record in found] == [wanted]
    assert log.flagged_since(actions, now + timedelta(seconds=1), outcome=Outcome.UNKNOWN, marker="recovered") == []


def test_audited_call_never_calls_when_the_intent_cannot_be_written() -> None:
    calls: list[str] = []

    def broken_intent() -> None:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        audited_call(lambda: calls.append("sent"), write_intent=broken_intent, write_outcome=lambda result: result)
    assert calls == []


def test_audited_call_hands_every_answer_or_vps_error_to_the_outcome_writer() -> None:
    order: list[str] = []
    ticks = iter([10.0, 10.25])

    def timeout() -> None:
        order.append("call")
        raise Unavailable("timed out", outcome_unknown=True)

    result: CallResult[None] = audited_call(
        timeout,
        write_intent=lambda: order.append("intent"),
        write_outcome=lambda outcome: (order.append("outcome"), outcome)[1],
        monotonic=lambda: next(ticks),
    )
    assert order == ["intent", "call", "outcome"]
    assert result.outcome_unknown and result.failure_outcome is Outcome.UNKNOWN
    assert result.error_details(name="web")["duration_ms"] == 250
    answered: CallResult[int] = audited_call(lambda: 7, write_intent=None, write_outcome=lambda outcome: outcome)
    assert (answered.answer, answered.error) == (7, None)


def test_approval_actions_keep_their_recorded_names() -> None:
    """Names already in audit trails never change: restore.<step>, delete.approval_<step>, delete.needs_check,
    schedule.approval_<step>."""
    for (kind, step), action in APPROVAL_ACTIONS.items():
        assert isinstance(action, Action)
        if kind == "restore":
            assert action == f"restore.{step}"
        elif kind == "schedule":
            assert action == f"schedule.approval_{step}"
        elif step == "needs_check":
            assert action == "delete.needs_check"
        else:
            assert action == f"delete.approval_{step}"
        assert action_for(kind, step) is action
    with pytest.raises(KeyError):
        action_for("delete", "executed")  # a delete's outcome is written by the delete itself


def test_rows_matched_counts_what_an_update_matched_and_refuses_a_query(database: Database) -> None:
    """The typed rowcount the repositories' compare-and-set relies on (storage.db.rows_matched)."""
    from sqlalchemy import select, update

    from storage.db import rows_matched
    from storage.models import Schedule

    with database.session() as session:
        assert rows_matched(session.execute(update(Schedule).where(Schedule.id == -1).values(enabled=False))) == 0
        with pytest.raises(TypeError):
            rows_matched(session.execute(select(Schedule)))
