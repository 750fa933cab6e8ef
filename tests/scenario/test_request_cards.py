"""A request and its card are one unit (issue 13 §3), through signed requests: a card that can't be posted or
built cancels its request and tells the requester how to fix it; every open request shown by `/snapshot pending`
and App Home carries the buttons the viewer may press, and they work exactly like the card's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.slack import blocks as ui
from devkit.fake_slack import FakeEphemeral, FakeView, find_action
from devkit.slack_driver import DriverResponse
from tests.app_fixtures import ALICE, BOB, CAROL, OPS, Harness

APPROVALS = "C0APPROVE"
ROLES = {"SNAPSHOT_OPERATORS": f"{ALICE},{CAROL}", "SNAPSHOT_APPROVERS": BOB}


def open_requests(h: Harness) -> list[Any]:
    return h.bot.core.approvals.open_requests()


def button_labels(blocks: list[dict[str, Any]], block_prefix: str) -> list[str]:
    return [
        element["text"]["text"]
        for block in blocks
        if str(block.get("block_id", "")).startswith(block_prefix)
        for element in block.get("elements", [])
    ]


def click_in_ephemeral(h: Harness, message: FakeEphemeral, label: str, user: str) -> DriverResponse:
    """A click on a button of an ephemeral message: Slack sends it without `message`, from the channel."""
    block_id, element = find_action(message.blocks, label)
    return h.driver.block_action(
        element["action_id"], element["value"], user_id=user, channel_id=message.channel, block_id=block_id
    )


def click_in_home(h: Harness, view: FakeView, label: str, user: str, block_id: str) -> DriverResponse:
    """A click on a button of the Home tab: a `view` container, no channel, no response_url."""
    block = next(b for b in view.view["blocks"] if b.get("block_id") == block_id)
    element = next(e for e in block["elements"] if e["text"]["text"] == label)
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": h.slack.team_id},
        "api_app_id": h.slack.api_app_id,
        "token": "fake-verification-token",
        "container": {"type": "view", "view_id": view.view_id},
        "trigger_id": h.driver.new_trigger_id(),
        "team": {"id": h.slack.team_id, "domain": "snapbot-test"},
        "is_enterprise_install": False,
        "view": {**view.view, "id": view.view_id, "team_id": h.slack.team_id, "app_id": h.slack.api_app_id},
        "actions": [
            {
                "action_id": element["action_id"],
                "block_id": block_id,
                "type": "button",
                "value": element["value"],
                "text": element["text"],
                "action_ts": "1.1",
            }
        ],
    }
    raw = urlencode({"payload": json.dumps(payload)}).encode()
    return h.driver.send_raw(raw, {"Content-Type": "application/x-www-form-urlencoded", **h.driver.sign(raw)})


def open_home(h: Harness, user: str) -> FakeView:
    published = len(h.slack.calls_to("views.publish"))
    assert h.driver.app_home_opened(user).status == 200
    h.slack.wait_for("views.publish", count=published + 1, timeout=10)
    h.settle()
    view = h.slack.home_view(user)
    assert view is not None
    return view


# ---- a card that can't be posted or built -------------------------------------------------------------------
def test_not_in_channel_cancels_the_request_and_says_how_to_fix_it(make_harness: Callable[..., Harness]) -> None:
    h = make_harness()
    h.slack.channels[OPS] = {"is_member": False}  # only chat:write, and nobody invited the bot to #ops
    h.run("restore 801")

    told = h.last_ephemeral(ALICE).visible_text
    assert "request #1 was *cancelled*" in told and "I'm not a member of <#C0OPS>" in told, told
    assert "`/invite @snapshot-bot`" in told and "SNAPSHOT_APPROVAL_CHANNEL" in told
    assert "Nothing was sent to VPS.org" in told
    assert open_requests(h) == []
    assert h.actions() == ["restore.requested", "restore.cancelled"]
    [cancelled] = h.audit(action="restore.cancelled")
    assert cancelled.actor_id == "system" and "not_in_channel" in cancelled.details["reason"]
    h.run("pending", user=BOB)
    assert "No open requests" in h.last_ephemeral(BOB).visible_text
    assert h.mutating_calls() == []


def test_card_falls_back_to_the_channel_asked_in(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.slack.channels[APPROVALS] = {"is_member": False}
    h.run("restore 801")
    c = h.card(OPS)
    assert "Your restore request #1 is waiting for approval." in h.last_ephemeral(ALICE).visible_text
    h.click(c, "Approve", user=BOB)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    assert "Approved by" in h.slack.message(OPS, c.ts).visible_text


def test_neither_channel_takes_the_card(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
    h.slack.channels[OPS] = {"is_member": False}
    h.run("restore 801")
    told = h.last_ephemeral(ALICE).visible_text
    assert "<#C0APPROVE> doesn't exist or I can't see it" in told and "I'm not a member of <#C0OPS>" in told, told
    assert open_requests(h) == [] and h.actions()[-1] == "restore.cancelled"


def test_a_card_builder_failure_cancels_the_request(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(req: Any, now: Any) -> Any:
        raise ValueError("text too long")

    monkeypatch.setattr(ui, "approval_card", broken)
    harness.run("restore 801")
    told = harness.last_ephemeral(ALICE).visible_text
    assert "was *cancelled*" in told and "its approval card could not be built" in told, told
    assert open_requests(harness) == []
    assert harness.audit(action="restore.cancelled")[0].details["reason"] == "its approval card could not be built"


def test_no_request_is_left_without_a_card_with_the_longest_names(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.sim.add_server(19999, "s" * 250)
    snapshot_id = h.sim.add_snapshot(19999, "n" * 64, description="d" * 500)
    h.run(f"restore {snapshot_id}")
    # Either the card is up (and its request pending), or the request was cancelled and the requester told.
    for request in open_requests(h):
        assert request.card_ts is not None, "a pending request without a card"
    if not open_requests(h):
        assert "was *cancelled*" in h.last_ephemeral(ALICE).visible_text


# ---- buttons wherever a request is shown --------------------------------------------------------------------
def test_pending_list_shows_each_viewer_the_buttons_they_may_press(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, **ROLES)
    h.run("restore 801")
    for user, expected in ((BOB, ["Approve", "Reject"]), (ALICE, ["Cancel"]), (CAROL, [])):
        h.run("pending", user=user)
        assert button_labels(h.last_ephemeral(user).blocks, "pending:") == expected, user


def test_approve_from_the_pending_list_works_like_the_card(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, **ROLES)
    h.run("restore 801")
    c = h.card()
    h.run("pending", user=BOB)
    listing = h.last_ephemeral(BOB)
    assert click_in_ephemeral(h, listing, "Approve", BOB).status == 200
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    refreshed = h.slack.message(APPROVALS, c.ts)
    assert refreshed.updates >= 1 and f"Approved by <@{BOB}>" in refreshed.visible_text
    assert not any(b.get("type") == "actions" for b in refreshed.blocks)
    # The same rules: a second click (here, or on the card) does nothing more.
    click_in_ephemeral(h, listing, "Approve", BOB)
    h.click(c, "Approve", user=BOB)
    h.settle()
    assert len(h.restore_calls()) == 1 and h.actions().count("restore.executing") == 1


def test_cancel_from_the_pending_list_and_self_approval_refused(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)  # open mode: Alice could press Approve if shown
    h.run("restore 801")
    h.run("pending", user=ALICE)
    listing = h.last_ephemeral(ALICE)
    assert button_labels(listing.blocks, "pending:") == ["Cancel"]
    h.driver.block_action(ui.APPROVE, "1", user_id=ALICE, channel_id=OPS)  # a hand-made click is refused
    h.settle()
    assert "can't approve your own request" in h.last_ephemeral(ALICE).visible_text
    click_in_ephemeral(h, listing, "Cancel", ALICE)
    h.settle()
    assert open_requests(h) == [] and h.restore_calls() == []
    assert "Cancelled by" in h.card().visible_text


def test_approve_and_cancel_from_app_home(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, SNAPSHOT_ALLOWED_CHANNELS=OPS, **ROLES)
    h.run("restore 801")
    h.run("restore 805")
    first, second = sorted(open_requests(h), key=lambda r: r.id)

    bob = open_home(h, BOB)
    assert button_labels(bob.view["blocks"], "home:") == ["Approve", "Reject", "Approve", "Reject"]
    assert click_in_home(h, bob, "Approve", BOB, f"home:{first.id}").status == 200
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    first_card = h.slack.message(APPROVALS, first.card_ts)
    assert f"Approved by <@{BOB}>" in first_card.visible_text
    # Bob's tab was refreshed: the approved request and its buttons are gone.
    refreshed = h.slack.home_view(BOB)
    assert refreshed is not None and f"*Restore #{first.id}*" not in json.dumps(refreshed.view)
    assert button_labels(refreshed.view["blocks"], "home:") == ["Approve", "Reject"]  # only the other one

    alice = open_home(h, ALICE)
    assert button_labels(alice.view["blocks"], "home:") == ["Cancel"]
    click_in_home(h, alice, "Cancel", ALICE, f"home:{second.id}")
    h.settle()
    assert open_requests(h) == [] or all(r.state != "pending" for r in open_requests(h))
    assert "Cancelled by" in h.slack.message(APPROVALS, second.card_ts).visible_text
    assert len(h.restore_calls()) == 1


def test_a_refusal_from_app_home_reaches_the_user(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, **ROLES)
    h.run("restore 801")
    [request] = open_requests(h)
    bob = open_home(h, BOB)
    h.click(h.card(), "Cancel (requester)", user=ALICE)  # meanwhile, on the card
    h.settle()
    click_in_home(h, bob, "Approve", BOB, f"home:{request.id}")  # Bob's tab is stale
    h.settle()
    dm = h.channel(h.slack.dm_channel(BOB))
    assert dm and "already cancelled" in dm[-1].text, dm
    assert h.restore_calls() == []


def test_reject_from_app_home_with_a_reason(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, SNAPSHOT_ALLOWED_CHANNELS=OPS, **ROLES)
    h.run("restore 801")
    [request] = open_requests(h)
    bob = open_home(h, BOB)
    click_in_home(h, bob, "Reject", BOB, f"home:{request.id}")
    h.settle()
    opened = h.slack.wait_for("views.open")[-1].args["view"]
    h.driver.view_submission(
        opened["callback_id"],
        {"reason": {"value": {"type": "plain_text_input", "value": "wrong server"}}},
        user_id=BOB,
        private_metadata=opened["private_metadata"],
    )
    h.settle()
    text = h.card().visible_text
    assert f"Rejected by <@{BOB}>" in text and "wrong server" in text
    assert open_requests(h) == [] and h.restore_calls() == []
    refreshed = h.slack.home_view(BOB)
    assert refreshed is not None and button_labels(refreshed.view["blocks"], "home:") == []
