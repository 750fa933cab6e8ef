"""Creating a snapshot as the VPS.org docs advise (issue 17 §3, §5), through signed requests.

A full server is said before the form (with the oldest offered for deletion through the normal delete path);
the form offers the servers from `GET /servers/` as an external select fed by `block_suggestion`; a running
server's create answer carries VPS.org's warning; a typed create says what it took as name and description.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.app_fixtures import ALICE, APPROVALS, BOB, OPS, Harness


def buttons(blocks: list[dict]) -> list[dict]:
    return [el for b in blocks for el in b.get("elements", []) if el.get("type") == "button"]


def test_create_button_on_a_full_server_says_so_before_the_form(harness: Harness) -> None:
    harness.driver.block_action("snapshot_create_open", "12348", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert harness.slack.calls_to("views.open") == []  # no form to fill in vain
    message = harness.last_ephemeral()
    assert "`staging-01` already has 5 of 5 snapshots" in message.visible_text
    assert "the oldest is `staging-build-1` (#810)" in message.visible_text
    offer = [b for b in buttons(message.blocks) if b["action_id"] == "snapshot_delete"]
    assert [b["value"] for b in offer] == ["810"]
    assert harness.mutating_calls() == []

    # The offer goes through the normal delete path: its confirmation, then the DELETE.
    harness.driver.block_action("snapshot_delete", "810", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert "Delete snapshot `staging-build-1` (#810)" in harness.last_ephemeral().visible_text
    harness.driver.block_action("snapshot_delete_confirm", "810", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert [c.path for c in harness.api_calls("DELETE")] == ["/api/v1/snapshots/810/"]

    # Room again: the same button now opens the form.
    harness.driver.block_action("snapshot_create_open", "12348", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert len(harness.slack.wait_for("views.open")) == 1


def test_the_offered_delete_asks_for_approval_when_deletes_need_one(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(APPROVAL_REQUIRED_FOR="restore,delete", SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.driver.block_action("snapshot_create_open", "12348", user_id=ALICE, channel_id=OPS)
    h.settle()
    h.driver.block_action("snapshot_delete", "810", user_id=ALICE, channel_id=OPS)
    h.settle()
    h.driver.block_action("snapshot_delete_confirm", "810", user_id=ALICE, channel_id=OPS)
    h.settle()
    assert h.api_calls("DELETE") == []
    card = h.card()
    assert "Delete request #1" in card.visible_text and "staging-build-1" in card.visible_text
    h.click(card, "Approve", user=BOB)
    h.settle()
    assert [c.path for c in h.api_calls("DELETE")] == ["/api/v1/snapshots/810/"]


def test_a_slow_vps_org_does_not_keep_the_form_from_opening(harness: Harness) -> None:
    harness.sim.faults.latency = 2.0  # longer than the pre-form look-up may take (trigger_id lives 3 s)
    harness.driver.block_action("snapshot_create_open", "12348", user_id=ALICE, channel_id=OPS)
    harness.settle()
    harness.sim.faults.latency = 0
    assert len(harness.slack.wait_for("views.open")) == 1  # the submission checks the quota again
