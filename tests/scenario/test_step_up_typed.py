"""The typed step-up before approving (issue 28 §2, APPROVAL_STEP_UP=typed): Approve opens a form bound to the
request; only the server's name, typed as shown, records the vote. Signed clicks and view submissions against the
whole app, the fake Slack and the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from devkit.fake_slack import FakeMessage
from tests.app_fixtures import ALICE, BOB, CAROL, Harness

APPROVALS = "C0APPROVE"


@pytest.fixture
def typed(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, APPROVAL_STEP_UP="typed")


def open_form(h: Harness, card: FakeMessage, user: str = BOB, label: str = "Approve") -> dict[str, Any]:
    opened = len(h.slack.calls_to("views.open"))
    response = h.click(card, label, user=user)
    assert response.status == 200, response.body
    h.slack.wait_for("views.open", count=opened + 1, timeout=10)
    h.settle()
    view: dict[str, Any] = h.slack.calls_to("views.open")[-1].args["view"]
    return view


def submit(h: Harness, view: dict[str, Any], answer: str, user: str = BOB, metadata: str | None = None) -> Any:
    response = h.driver.view_submission(
        view["callback_id"],
        {"answer": {"value": {"type": "plain_text_input", "value": answer}}},
        user_id=user,
        user_name=user[2:].lower(),
        private_metadata=view["private_metadata"] if metadata is None else metadata,
    )
    assert response.status == 200, response.body
    h.settle()
    return response


def inline_error(response: Any) -> str:
    body = json.loads(response.body or "{}")
    assert body.get("response_action") == "errors", body
    return str(body["errors"]["answer"])


def test_approve_opens_a_form_and_only_the_right_name_records_the_vote(typed: Harness) -> None:
    h = typed
    h.run("restore 801", user=ALICE)
    view = open_form(h, h.card())
    text = json.dumps(view)
    assert "`web-server-01`" in text and "case-sensitive" in text
    assert view["title"]["text"] == "Approve request #1"
    assert h.audit(action="restore.approved") == []  # the click alone decided nothing
    assert h.restore_calls() == [] and "Approve" in h.card().visible_text

    for wrong in ("WEB-SERVER-01", "web-server-0", "12345 ", ""):
        assert "not the server's name" in inline_error(submit(h, view, wrong))
    assert h.restore_calls() == [] and h.audit(action="restore.approved") == []
    failed = h.audit(action="step_up.failed")
    assert len(failed) == 4 and all(r.details.get("method") == "typed" for r in failed)
    assert not any("WEB-SERVER" in json.dumps(r.details) for r in h.audit())  # what was typed is never kept

    assert json.loads(submit(h, view, "  web-server-01  ").body or "{}") == {}  # spaces around are ignored
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    approved = h.audit(action="restore.approved")
    assert len(approved) == 1 and approved[0].details["step_up"] == "typed" and approved[0].actor_id == BOB
    assert f"Approved by <@{BOB}>" in h.card().visible_text


def test_requester_and_non_approvers_get_no_form(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        APPROVAL_STEP_UP="typed",
        SNAPSHOT_OPERATORS=f"{ALICE},{CAROL}",
        SNAPSHOT_APPROVERS=f"{ALICE},{BOB}",
    )
    h.run("restore 801", user=ALICE)
    card = h.card()
    opened = len(h.slack.calls_to("views.open"))
    for user, words in ((ALICE, "can't approve your own request"), (CAROL, "approver")):
        h.click(card, "Approve", user=user)
        h.settle()
        assert words in h.last_ephemeral(user).visible_text
    assert len(h.slack.calls_to("views.open")) == opened
    assert h.restore_calls() == []


@pytest.mark.parametrize(
    ("name", "asked"),
    [
        ("<!channel> db *prod*", "<!channel> db *prod*"),  # shown whole in a code span: asked as it is
        ("evil`name", "id"),  # a backtick could not be shown in a code span: the id is asked instead
        ("zero\u200bwidth", "id"),  # an invisible character would make the name impossible to type
        ("right\u202eleft", "id"),  # a bidirectional override would show it reordered
        ("x" * 81, "id"),  # too long to show whole
        ("two  spaces", "id"),  # spacing the card would collapse
    ],
)
def test_hostile_server_names_ask_for_what_the_form_shows(typed: Harness, name: str, asked: str) -> None:
    h = typed
    h.sim.add_server(50001, name)
    snapshot_id = h.sim.add_snapshot(50001, "hostile-snap")
    h.run(f"restore {snapshot_id}", user=ALICE)
    view = open_form(h, h.card())
    ask = next(b for b in view["blocks"] if "To approve" in json.dumps(b))["text"]["text"]
    expected = "50001" if asked == "id" else name
    shown = expected.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"`{shown}`" in ask  # whole, in a code span, escaped: no ping, no link, no formatting
    assert "<!channel>" not in json.dumps(view)
    if expected != name:
        assert "not the server's name" in inline_error(submit(h, view, name))
        assert h.restore_calls() == []
    submit(h, view, expected)
    assert h.restore_calls() == [f"/api/v1/snapshots/{snapshot_id}/restore/"]


def test_a_request_decided_meanwhile_answers_stale(typed: Harness) -> None:
    h = typed
    h.run("restore 801", user=ALICE)
    card = h.card()
    view = open_form(h, card, user=BOB)
    h.click(card, "Cancel (requester)", user=ALICE)
    h.settle()
    assert "already cancelled" in inline_error(submit(h, view, "web-server-01"))
    assert h.restore_calls() == [] and h.audit(action="restore.approved") == []


def test_a_changed_request_answers_stale(typed: Harness) -> None:
    h = typed
    h.run("restore 801", user=ALICE)
    view = open_form(h, h.card())
    with h.bot.core.db.begin() as conn:  # a database administrator edits what the card showed
        conn.exec_driver_sql("UPDATE approval_requests SET bound_digest = 'edited' WHERE id = 1")
    assert "changed since this form opened" in inline_error(submit(h, view, "web-server-01"))
    assert h.restore_calls() == []


def test_a_forged_binding_approves_nothing(typed: Harness) -> None:
    h = typed
    h.run("restore 801", user=ALICE)
    h.sim.add_server(50002, "other-box")
    other = h.sim.add_snapshot(50002, "other-snap")
    h.run(f"restore {other}", user=ALICE)
    first = h.slack.message(APPROVALS, next(m for m in h.channel(APPROVALS) if "request #1" in m.visible_text).ts)
    view = open_form(h, first)

    sealed = json.loads(view["private_metadata"])
    body = json.loads(sealed["b"])
    second_id = max(r.request_id or 0 for r in h.audit(action="restore.requested"))
    forged = json.dumps({"b": json.dumps({**body, "r": second_id}), "t": sealed["t"]})
    assert "no longer valid" in inline_error(submit(h, view, "other-box", metadata=forged))
    assert "no longer valid" in inline_error(submit(h, view, "web-server-01", user=CAROL))  # not opened for Carol
    assert "no longer valid" in inline_error(submit(h, view, "web-server-01", metadata="{}"))
    assert h.restore_calls() == [] and h.audit(action="restore.approved") == []
    assert len([r for r in h.audit(action="step_up.failed") if "forged" in r.details.get("reason", "")]) == 3

    submit(h, view, "web-server-01")  # the genuine form still works
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]


def test_step_up_only_for_the_kinds_configured(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        APPROVAL_STEP_UP="typed",
        APPROVAL_STEP_UP_FOR="delete",
        APPROVAL_REQUIRED_FOR="restore,delete",
    )
    h.run("restore 801", user=ALICE)
    opened = len(h.slack.calls_to("views.open"))
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert len(h.slack.calls_to("views.open")) == opened  # a restore decides at once here
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    assert "step_up" not in h.audit(action="restore.approved")[0].details


def test_approve_without_safety_snapshot_keeps_its_choice_through_the_form(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, APPROVAL_STEP_UP="typed", RESTORE_SAFETY_SNAPSHOT="auto")
    h.run("restore 801", user=ALICE)
    view = open_form(h, h.card(), label="Approve without safety snapshot")
    assert "No safety snapshot" in json.dumps(view)
    submit(h, view, "web-server-01")
    approved = h.audit(action="restore.approved")
    assert approved[0].details["safety_snapshot"] == "none" and approved[0].details["step_up"] == "typed"
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    assert not [r for r in h.sim.requests if r.method == "POST" and r.path.endswith("/snapshots/")]
