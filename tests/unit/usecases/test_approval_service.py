"""ApprovalService with the fake VPS.org client: request, approve, reject, cancel, expire, claims.

The rule under test: exactly the approved action, once, or visibly nothing; never by the requester alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.usecases.errors import InvalidInput, NotFoundError, Refused
from tests.unit.factory import ALICE, BOB, CAROL, Core


def restores(core: Core) -> list[tuple[str, tuple[object, ...]]]:
    return [call for call in core.vps.mutating_calls() if call[0] == "restore_snapshot"]


def test_request_records_a_pending_request_and_sends_nothing(core: Core) -> None:
    view = core.approvals.request(ALICE, 801)
    assert (view.state, view.snapshot_id, view.server_id, view.requester_id) == ("pending", 801, 1, ALICE.user_id)
    assert view.expires_at == core.clock.now + timedelta(minutes=60)
    assert core.vps.mutating_calls() == []
    assert core.actions() == ["restore.requested"]
    assert [r.id for r in core.approvals.open_requests()] == [view.id]


def test_request_for_a_snapshot_in_progress_is_refused(core: Core) -> None:
    with pytest.raises(InvalidInput, match="not completed"):
        core.approvals.request(ALICE, 803)
    assert core.approvals.open_requests() == []
    assert core.actions() == ["refused.validation"]


def test_request_for_an_unknown_snapshot_is_refused(core: Core) -> None:
    with pytest.raises(NotFoundError):
        core.approvals.request(ALICE, 999)
    assert core.approvals.open_requests() == []


def test_approval_by_someone_else_restores_exactly_once(core: Core) -> None:
    view = core.approvals.request(ALICE, 801)
    result = core.approvals.approve(BOB, view.id)
    assert result.outcome == "executed"
    assert result.request.state == "executed"
    assert restores(core) == [("restore_snapshot", (801,))]
    assert core.actions() == ["restore.requested", "restore.approved", "restore.executing", "restore.executed"]

    with pytest.raises(Refused, match="already"):
        core.approvals.approve(CAROL, view.id)  # a late second click
    assert len(restores(core)) == 1


def test_self_approval_is_refused_audited_and_sends_nothing(core: Core) -> None:
    view = core.approvals.request(ALICE, 801)
    with pytest.raises(Refused, match="own request"):
        core.approvals.approve(ALICE, view.id)
    assert restores(core) == []
    assert core.approvals.get(view.id).state == "pending"
    assert core.actions()[-1] == "refused.self_approval"


def test_two_approvals_required_wait_for_the_second_person(make_core: Callable[..., Core]) -> None:
    core = make_core(approvals_required=2)
    view = core.approvals.request(ALICE, 801)
    first = core.approvals.approve(BOB, view.id)
    assert first.outcome == "vote_recorded" and restores(core) == []
    with pytest.raises(Refused, match="already approved"):
        core.approvals.approve(BOB, view.id)
    assert core.approvals.approve(CAROL, view.id).outcome == "executed"
    assert len(restores(core)) == 1


def test_reject_closes_the_request_without_a_call(core: Core) -> None:
    view = core.approvals.request(ALICE, 801)
    result = core.approvals.reject(BOB, view.id, "wrong server")
    assert (result.outcome, result.request.state, result.request.reason) == ("rejected", "rejected", "wrong server")
    with pytest.raises(Refused):
        core.approvals.approve(CAROL, view.id)
    assert restores(core) == []


def test_the_requester_cannot_reject_but_can_cancel(core: Core) -> None:
    view = core.approvals.request(ALICE, 801)
    with pytest.raises(Refused, match="Cancel"):
        core.approvals.reject(ALICE, view.id)
    with pytest.raises(Refused, match="Only the person who asked"):
        core.approvals.cancel(BOB, view.id)
    result = core.approvals.cancel(ALICE, view.id)
    assert (result.outcome, result.request.state) == ("cancelled", "cancelled")
    assert core.approvals.open_requests() == []
    assert restores(core) == []


def test_expire_due_closes_requests_past_their_window(core: Core) -> None:
    view = core.approvals.request(ALICE, 801)
    assert core.approvals.expire_due() == []
    core.clock.advance(timedelta(minutes=61))
    expired = core.approvals.expire_due()
    assert [(v.id, v.state) for v in expired] == [(view.id, "expired")]
    with pytest.raises(Refused):
        core.approvals.approve(BOB, view.id)
    assert restores(core) == []


def test_approving_after_the_window_expires_instead_of_restoring(core: Core) -> None:
    view = core.approvals.request(ALICE, 801)
    core.clock.advance(timedelta(minutes=61))
    result = core.approvals.approve(BOB, view.id)
    assert (result.outcome, result.request.state) == ("expired", "expired")
    assert restores(core) == []


def test_a_renamed_snapshot_makes_the_approval_stale(core: Core) -> None:
    view = core.approvals.request(ALICE, 801)
    core.vps.add_snapshot(801, 1, "something-else")  # changed on VPS.org after the card was shown
    result = core.approvals.approve(BOB, view.id)
    assert result.outcome == "stale"
    assert restores(core) == []


def test_an_executor_whose_claim_is_taken_over_sends_nothing(make_core: Callable[..., Core]) -> None:
    # While this executor re-checks the snapshot on VPS.org, the database's clock passes its claim's expiry and
    # the flagger (another replica's ticker) takes the request back.
    core = make_core()
    view = core.approvals.request(ALICE, 801)
    taken_over: list[str] = []

    def another_replica_flags(method: str) -> None:
        if method == "list_snapshots" and not taken_over:
            core.db.clock.offset = timedelta(minutes=5)
            taken_over.extend(result.outcome for result in core.approvals.flag_stale_executions())

    core.vps.on_call = another_replica_flags
    result = core.approvals.approve(BOB, view.id)

    assert taken_over == ["not_sent"]
    assert result.outcome == "claim_lost"
    assert result.request.state == "pending"  # nothing was sent: it may be approved again
    assert restores(core) == []
