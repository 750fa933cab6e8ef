"""A reason on every restore started from a button (issue 17 §2, the remainder): the list's Restore button opens a
form with a "Reason" field (required under RESTORE_REASON_REQUIRED), checked in place; the reason then shows in
`/snapshot pending` and App Home like on the card. Signed requests and view submissions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.app_fixtures import ALICE, BOB, Harness

APPROVALS = "C0APPROVE"


def _open_restore_form(h: Harness, snapshot_id: int, user: str = ALICE) -> dict[str, Any]:
    h.run("list 12345", user=user)
    listing = h.last_ephemeral(user)
    opened = len(h.slack.calls_to("views.open"))
    button = next(
        el
        for block in listing.blocks
        for el in block.get("elements", [])
        if el.get("action_id") == "snapshot_restore" and el.get("value") == str(snapshot_id)
    )
    assert button["text"]["text"] == "Restore"
    response = h.driver.block_action(
        "snapshot_restore",
        str(snapshot_id),
        user_id=user,
        user_name=user[2:].lower(),
        channel_id="C0OPS",
    )
    assert response.status == 200, response.body
    h.slack.wait_for("views.open", count=opened + 1, timeout=10)
    h.settle()
    return h.slack.calls_to("views.open")[-1].args["view"]


def _submit(h: Harness, view: dict[str, Any], reason: str | None, user: str = ALICE) -> Any:
    response = h.driver.view_submission(
        view["callback_id"],
        {"reason": {"value": {"type": "plain_text_input", "value": reason}}},
        user_id=user,
        user_name=user[2:].lower(),
        private_metadata=view["private_metadata"],
    )
    h.settle()
    return response


def _reason_block(view: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == "reason")


def test_the_restore_button_asks_for_a_reason_and_the_card_shows_it(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    view = _open_restore_form(h, 801)
    assert view["title"]["text"] == "Restore #801"
    reason = _reason_block(view)
    assert reason["label"]["text"] == "Reason" and reason["optional"] is True  # Slack adds "(optional)"
    assert "overwrites *ALL* current data" in json.dumps(view)
    assert h.channel(APPROVALS) == []  # nothing asked yet: the form only opened

    assert _submit(h, view, "INC-1234 db corrupted").status == 200
    card = h.card().visible_text
    assert "*Reason:* “INC-1234 db corrupted”" in card
    assert h.audit(action="restore.requested")[0].details["reason"] == "INC-1234 db corrupted"
    assert "waiting for approval" in h.last_ephemeral(ALICE).visible_text


def test_an_empty_optional_reason_asks_without_one(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    _submit(h, _open_restore_form(h, 798), None)
    assert "Reason" not in h.card().visible_text
    assert h.audit(action="restore.requested")[0].details.get("reason") is None


def test_required_mode_makes_the_field_mandatory_and_says_so_in_place(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, RESTORE_REASON_REQUIRED="true")
    view = _open_restore_form(h, 801)
    assert _reason_block(view)["optional"] is False
    response = _submit(h, view, "  ")
    errors = json.loads(response.body)
    assert errors["response_action"] == "errors" and "needs a reason" in errors["errors"]["reason"]
    assert h.channel(APPROVALS) == [] and h.audit(action="restore.requested") == []

    _submit(h, view, "INC-9 disk full")
    assert "*Reason:* “INC-9 disk full”" in h.card().visible_text


def test_a_reason_too_long_is_refused_in_the_form(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    response = _submit(h, _open_restore_form(h, 801), "x" * 201)
    assert "too long (201 characters; at most 200)" in json.loads(response.body)["errors"]["reason"]
    assert h.channel(APPROVALS) == []


def test_someone_who_may_not_ask_gets_no_form(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, SNAPSHOT_VIEWERS=BOB, SNAPSHOT_OPERATORS=ALICE)
    opened = len(h.slack.calls_to("views.open"))
    h.run("list 12345", user=BOB)
    listing = h.last_ephemeral(BOB)
    assert any(el.get("value") == "801" for b in listing.blocks for el in b.get("elements", []))
    h.driver.block_action("snapshot_restore", "801", user_id=BOB, user_name="bob", channel_id="C0OPS")
    h.settle()
    assert "request a restore" in h.last_ephemeral(BOB).visible_text
    assert len(h.slack.calls_to("views.open")) == opened
    assert h.channel(APPROVALS) == []


def test_the_reason_shows_in_pending_and_app_home(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.run("restore 801 INC-1234 db corrupted", user=ALICE)
    h.run("pending", user=BOB)
    assert "*Reason:* “INC-1234 db corrupted”" in h.last_ephemeral(BOB).visible_text

    published = len(h.slack.calls_to("views.publish"))
    h.driver.app_home_opened(BOB)
    h.slack.wait_for("views.publish", count=published + 1, timeout=10)
    h.settle()
    home = h.slack.home_view(BOB)
    assert home is not None and "*Reason:* “INC-1234 db corrupted”" in json.dumps(home.view, ensure_ascii=False)


def test_the_reject_form_says_reason_once(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.run("restore 801", user=ALICE)
    h.click(h.card(), "Reject", user=BOB)
    view = h.slack.wait_for("views.open")[-1].args["view"]
    assert _reason_block(view)["label"]["text"] == "Reason" and _reason_block(view)["optional"] is True
