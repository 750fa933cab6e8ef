"""One confirmation before a vote, not two (issue 28 §2): where the step-up applies to a request's kind, its Approve
buttons (card, `/snapshot pending`, App Home) carry no confirm dialog, and the step-up form says what approving
does instead; elsewhere (step-up off, or a kind not in APPROVAL_STEP_UP_FOR) the dialog stays. Signed commands,
clicks and events against the whole app, the fake Slack and the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bot.slack.blocks import APPROVE, APPROVE_NO_SAFETY, FREE_OLDEST
from devkit.fake_slack.blocks import blocks_text
from tests.app_fixtures import ALICE, BOB, OPS, Harness
from tests.scenario.test_home import open_home
from tests.scenario.test_step_up_typed import APPROVALS, open_form, submit

SAFE = "Approve (safety snapshot first)"


def approve_buttons(blocks: list[dict[str, Any]], request_id: int) -> list[dict[str, Any]]:
    """The Approve buttons of request `request_id` in `blocks` (every variant the safety snapshot offers)."""
    found = [
        element
        for block in blocks
        if block.get("type") == "actions" and str(block.get("block_id", "")).endswith(f":{request_id}")
        for element in block.get("elements", [])
        if element.get("action_id") in (APPROVE, APPROVE_NO_SAFETY)
    ]
    assert found, f"no Approve button for request #{request_id}"
    return found


def everywhere(h: Harness, request_id: int) -> dict[str, list[dict[str, Any]]]:
    """Request `request_id`'s Approve buttons as an approver (Bob) sees them: its card, `/snapshot pending`, Home."""
    card = next(m for m in h.channel(APPROVALS) if f"request #{request_id}" in m.visible_text and not m.thread_ts)
    h.run("pending", user=BOB)
    pending = h.last_ephemeral(BOB).blocks
    home = open_home(h, BOB).view["blocks"]
    return {
        "card": approve_buttons(h.slack.message(APPROVALS, card.ts).blocks, request_id),
        "pending": approve_buttons(pending, request_id),
        "home": approve_buttons(home, request_id),
    }


def said(view: dict[str, Any]) -> str:
    """What a form says, as read (code spans and bold undone)."""
    return blocks_text(view["blocks"]).replace("`", "").replace("*", "")


def request_delete(h: Harness, snapshot_id: int) -> None:
    h.run(f"delete {snapshot_id}")
    h.driver.block_action("snapshot_delete_confirm", str(snapshot_id), user_id=ALICE, channel_id=OPS)
    h.settle()


def test_with_step_up_on_approve_opens_the_form_without_a_dialog_first(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        APPROVAL_STEP_UP="typed",
        RESTORE_SAFETY_SNAPSHOT="auto",
        RESTORE_APPROVALS_REQUIRED="2",
    )
    h.run("restore 801", user=ALICE)
    shown = everywhere(h, 1)
    for where, buttons in shown.items():
        labels = [b["text"]["text"] for b in buttons]
        assert labels == ["Approve (safety snapshot first)", "Approve without safety snapshot"], where
        assert [b for b in buttons if "confirm" in b] == [], where

    # the form says what the dialog used to: with the safety snapshot first, and without
    form = said(open_form(h, h.card(), label=SAFE))
    assert "Approve this restore?" in form
    assert "A safety snapshot pre-restore-1 of the server is taken first" in form
    assert "pre-migration-snapshot (#801) is restored onto web-server-01, overwriting all current data" in form
    without = said(open_form(h, h.card(), label="Approve without safety snapshot"))
    assert "All current data there is overwritten. This cannot be undone. No safety snapshot: no undo." in without

    # Bob's vote (1 of 2) redraws the card: still no dialog on the Approve buttons left for the others
    submit(h, open_form(h, h.card(), label=SAFE), "web-server-01")
    assert "1 of 2" in h.card().visible_text and h.card().updates >= 1
    assert [b for b in approve_buttons(h.card().blocks, 1) if "confirm" in b] == []
    # the full server's "Free oldest snapshot first" is not an approval: it keeps its dialog wherever it shows
    assert all(
        "confirm" in e for b in h.card().blocks for e in b.get("elements", []) if e.get("action_id") == FREE_OLDEST
    )


def test_the_form_says_a_restore_without_safety_snapshot_cannot_be_undone(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, APPROVAL_STEP_UP="typed", RESTORE_SAFETY_SNAPSHOT="off")
    h.run("restore 801", user=ALICE)
    [button] = approve_buttons(h.card().blocks, 1)
    assert button["text"]["text"] == "Approve" and "confirm" not in button
    form = said(open_form(h, h.card()))
    assert (
        "pre-migration-snapshot (#801) will be restored onto web-server-01. All current data there is overwritten. "
        "This cannot be undone." in form
    )
    assert "safety snapshot" not in form.lower()


def test_a_kind_without_step_up_keeps_its_dialog_beside_one_with_it(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        APPROVAL_STEP_UP="typed",  # APPROVAL_STEP_UP_FOR defaults to restore
        APPROVAL_REQUIRED_FOR="restore,delete",
        RESTORE_SAFETY_SNAPSHOT="off",
    )
    h.run("restore 801", user=ALICE)
    request_delete(h, 798)
    assert "Delete request #2" in h.card().visible_text
    for where, buttons in everywhere(h, 2).items():
        [approve] = buttons
        dialog = approve.get("confirm")
        assert dialog is not None, where
        assert dialog["title"]["text"] == "Approve this delete?", where
        assert "(#798) will be deleted permanently." in dialog["text"]["text"], where
    for where, buttons in everywhere(h, 1).items():
        assert [b for b in buttons if "confirm" in b] == [], where

    # the delete still decides at the dialog, with no form
    opened = len(h.slack.calls_to("views.open"))
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert len(h.slack.calls_to("views.open")) == opened
    assert [r.path for r in h.api_calls("DELETE")] == ["/api/v1/snapshots/798/"]


def test_step_up_for_deletes_moves_the_delete_consequence_into_the_form(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        APPROVAL_STEP_UP="typed",
        APPROVAL_STEP_UP_FOR="delete",
        APPROVAL_REQUIRED_FOR="restore,delete",
    )
    request_delete(h, 798)
    [approve] = approve_buttons(h.card().blocks, 1)
    assert "confirm" not in approve
    form = said(open_form(h, h.card()))
    assert "Approve this delete?" in form and "(#798) will be deleted permanently." in form
    assert h.api_calls("DELETE") == []  # the click alone deleted nothing


def test_with_step_up_off_every_approve_keeps_its_dialog(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, RESTORE_SAFETY_SNAPSHOT="auto")
    h.run("restore 801", user=ALICE)
    for where, buttons in everywhere(h, 1).items():
        assert len(buttons) == 2 and all("confirm" in b for b in buttons), where
        dialogs = json.dumps([b["confirm"] for b in buttons])
        assert "Approve this restore?" in dialogs and "No safety snapshot: no undo." in dialogs, where
