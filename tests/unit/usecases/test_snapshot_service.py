"""SnapshotService with the fake VPS.org client at its port: what it sends, what it audits, what it refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.usecases.access import AccessPolicy
from bot.usecases.errors import InvalidInput, NotFoundError, QuotaReached, Refused
from bot.vps.errors import Unavailable
from tests.unit.factory import ALICE, BOB, Core
from tests.unit.fakes import FakeVps


def test_overview_groups_snapshots_by_server(core: Core) -> None:
    overview = core.snapshots.overview(ALICE)
    by_server = {group.server.id: [s.id for s in group.snapshots] for group in overview.groups}
    assert sorted(by_server[1]) == [801, 802, 803] and by_server[1][0] == 802  # newest first
    assert by_server[2] == []
    assert overview.snapshot_count == 3
    assert core.vps.mutating_calls() == []


def test_create_writes_intent_before_the_call_and_outcome_after(core: Core) -> None:
    seen_at_call: list[list[str]] = []
    core.vps.on_call = lambda method: seen_at_call.append(core.actions()) if method == "create_snapshot" else None

    result = core.snapshots.create(ALICE, 1, "pre-deploy", "before the release")

    assert result.snapshot.name == "pre-deploy" and result.server.id == 1
    assert core.vps.mutating_calls() == [("create_snapshot", (1, "pre-deploy", "before the release"))]
    assert seen_at_call == [["create.requested"]]  # the intent was committed before VPS.org heard of it
    assert core.actions() == ["create.requested", "create.succeeded"]
    intent, outcome = reversed(core.audit.query(limit=10))
    assert intent.actor_id == outcome.actor_id == ALICE.user_id
    assert intent.operation_id == outcome.operation_id == result.operation_id


def test_create_at_the_quota_is_refused_and_sends_nothing(make_core: Callable[..., Core]) -> None:
    vps = FakeVps.seeded()
    for offset in range(2):
        vps.add_snapshot(810 + offset, 1, f"extra-{offset}")
    core = make_core(vps=vps)  # server 1 now holds 5 snapshots

    with pytest.raises(QuotaReached):
        core.snapshots.create(ALICE, 1, "one-too-many")

    assert core.vps.mutating_calls() == []
    assert core.actions() == ["refused.validation"]


@pytest.mark.parametrize("bad_name", ["", "x" * 500, "bad\nname"])
def test_create_with_a_bad_name_is_refused_before_any_call(core: Core, bad_name: str) -> None:
    with pytest.raises(InvalidInput):
        core.snapshots.create(ALICE, 1, bad_name)
    assert core.vps.calls == []
    assert core.actions() == ["refused.validation"]


def test_a_failed_create_is_audited_as_failed(core: Core) -> None:
    core.vps.fail_next("create_snapshot", Unavailable("VPS.org answered 503", status_code=503))
    with pytest.raises(Exception):  # noqa: B017 - the user-facing wording is the renderers' business
        core.snapshots.create(ALICE, 1, "pre-deploy")
    assert core.actions() == ["create.requested", "create.failed"]


def test_delete_sends_one_delete_and_audits_both_sides(core: Core) -> None:
    result = core.snapshots.delete(ALICE, 802)
    assert result.snapshot.id == 802
    assert core.vps.mutating_calls() == [("delete_snapshot", (802,))]
    assert 802 not in core.vps.snapshots
    assert core.actions() == ["delete.requested", "delete.succeeded"]


def test_delete_of_an_unknown_snapshot_sends_nothing(core: Core) -> None:
    with pytest.raises(NotFoundError):
        core.snapshots.delete(ALICE, 999)
    assert core.vps.mutating_calls() == []


def test_a_viewer_may_list_but_not_create(make_core: Callable[..., Core]) -> None:
    core = make_core(access=AccessPolicy(viewers=[BOB.user_id], operators=[ALICE.user_id]))
    assert core.snapshots.overview(BOB).snapshot_count == 3
    with pytest.raises(Refused):
        core.snapshots.create(BOB, 1, "sneaky")
    assert core.vps.mutating_calls() == []
    assert core.actions()[-1] == "refused.permission"
