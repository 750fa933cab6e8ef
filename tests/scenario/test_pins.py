"""Pins (issue 29 §3) driven as Slack drives them: `/snapshot pin` and `unpin` as signed, Slack-encoded commands,
the delete command and its confirm button refused for a pinned snapshot, against the simulator and fake Slack."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.app_fixtures import ALICE, BOB, CAROL, OPS, Harness
from tests.scenario.test_home import open_home, text_of


def test_pin_and_unpin_are_stored_audited_and_answered(harness: Harness) -> None:
    harness.run("pin 798 before the migration INC-42")
    answer = harness.last_ephemeral().visible_text
    assert ":pushpin:" in answer and "`weekly-snapshot-2025-01-08`" in answer and "#798" in answer
    assert "<@U0ALICE>" in answer and "“before the migration INC-42”" in answer
    pinned = harness.audit(action="snapshot.pinned")
    assert [r.outcome for r in reversed(pinned)] == ["intent", "ok"]
    assert {r.operation_id for r in pinned} == {pinned[0].operation_id}
    assert pinned[0].actor_id == ALICE and pinned[0].snapshot_id == 798 and pinned[0].server_id == 12345
    assert pinned[0].details == {"name": "weekly-snapshot-2025-01-08", "reason": "before the migration INC-42"}

    harness.run("pin 798 again", user=BOB)
    again = harness.last_ephemeral(BOB).visible_text
    assert "already pinned by <@U0ALICE>" in again and "nothing was changed" in again

    harness.run("unpin 798")
    assert "no longer pinned" in harness.last_ephemeral().visible_text
    unpinned = harness.audit(action="snapshot.unpinned")
    assert [r.outcome for r in reversed(unpinned)] == ["intent", "ok"]
    assert unpinned[0].details["pinned_by"] == ALICE

    harness.run("unpin 798")
    assert "Snapshot 798 is not pinned; nothing was changed" in harness.last_ephemeral().visible_text
    assert harness.mutating_calls() == []  # a pin is the bot's own record: nothing reaches VPS.org


def test_pinning_an_unknown_snapshot_stores_nothing(harness: Harness) -> None:
    harness.run("pin 4242 keep it")
    assert "Snapshot 4242 does not exist" in harness.last_ephemeral().visible_text
    assert harness.audit(action="snapshot.pinned") == []
    assert harness.bot.core.snapshots.pinned() == {}
    harness.run("delete 4242")  # no pin was stored for it: the ordinary answer
    assert "does not exist" in harness.last_ephemeral().visible_text


def test_a_bad_id_or_a_long_reason_is_refused(harness: Harness) -> None:
    assert "must be a whole number" in harness.run("pin 12x").body  # answered in the acknowledgement
    assert "needs exactly one snapshot id" in harness.run("unpin 798 799").body
    harness.run("pin 798 " + "x" * 201)
    assert "The reason is too long: 201 characters, at most 200" in harness.last_ephemeral().visible_text
    assert harness.bot.core.snapshots.pinned() == {}
    assert harness.audit(action="refused.validation")[0].details["operation"] == "pin"


def test_a_pinned_snapshot_is_not_deleted_by_hand(harness: Harness) -> None:
    harness.run("pin 798 quarterly audit evidence", user=BOB)
    harness.run("delete 798")
    refusal = harness.last_ephemeral().visible_text
    assert "is pinned by <@U0BOB>" in refusal and "“quarterly audit evidence”" in refusal
    assert "/snapshot unpin 798" in refusal and "Nothing was deleted" in refusal
    # A confirm button from before the pin (or forged) is refused the same way.
    harness.driver.block_action("snapshot_delete_confirm", "798", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert "is pinned by <@U0BOB>" in harness.last_ephemeral().visible_text
    assert harness.api_calls("DELETE") == []
    assert harness.audit(action="delete.requested") == []

    harness.run("unpin 798", user=BOB)
    harness.driver.block_action("snapshot_delete_confirm", "798", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert [c.path for c in harness.api_calls("DELETE")] == ["/api/v1/snapshots/798/"]


def test_a_hostile_reason_renders_inert(harness: Harness) -> None:
    harness.run("pin 798 @channel hi @bob *urgent* `x` <https://evil.example|click> :white_check_mark:")
    answer = harness.last_ephemeral()
    for text in [answer.text, *(str(b) for b in answer.blocks)]:
        assert "<!channel>" not in text and "<@U0BOB" not in text and "<https://evil" not in text
        assert "*urgent*" not in text and ":white_check_mark:" not in text
    harness.run("delete 798", user=BOB)
    refusal = harness.last_ephemeral(BOB)
    assert "<!channel>" not in refusal.text and "<@U0BOB" not in refusal.text and "*urgent*" not in refusal.text


def test_only_operators_pin(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_OPERATORS=ALICE, SNAPSHOT_VIEWERS=BOB)
    h.run("pin 798 mine", user=BOB)
    assert "operator" in h.last_ephemeral(BOB).visible_text
    assert h.bot.core.snapshots.pinned() == {}
    h.run("pin 798 ours", user=ALICE)
    h.run("unpin 798", user=BOB)
    assert "operator" in h.last_ephemeral(BOB).visible_text
    assert list(h.bot.core.snapshots.pinned()) == [798]
    assert [r.actor_id for r in h.audit(action="refused.permission")] == [BOB, BOB]


def test_help_lists_pin_and_unpin(harness: Harness) -> None:
    help_text = json.loads(harness.command("help").body)["blocks"][0]["text"]["text"]
    assert "`/snapshot pin &lt;snapshot_id&gt; [reason…]` — protect a snapshot" in help_text
    assert "`/snapshot unpin &lt;snapshot_id&gt;` — remove a pin" in help_text


def test_the_list_shows_the_pin_and_offers_no_delete(harness: Harness) -> None:
    harness.run("pin 798 keep for the auditors @carol")
    harness.run("list 12345", user=BOB)
    listing = harness.last_ephemeral(BOB)
    text = listing.visible_text
    assert ":pushpin: pinned by <@U0ALICE>: “keep for the auditors " in text
    assert "<@U0CAROL" not in text  # the reason's mention is shown, never made (nobody is pinged by it)
    assert text.count(":pushpin:") == 1  # 801 is not pinned
    deletes = [
        e["value"] for b in listing.blocks for e in b.get("elements", []) if e.get("action_id") == "snapshot_delete"
    ]
    assert deletes == ["801"]
    harness.run("unpin 798")
    harness.run("list 12345", user=BOB)
    assert ":pushpin:" not in harness.last_ephemeral(BOB).visible_text


def test_app_home_shows_pins_and_forgets_a_snapshot_vps_no_longer_lists(harness: Harness) -> None:
    harness.run("pin 801 before the migration *really*")
    text = text_of(open_home(harness, BOB))
    assert "Pinned snapshots" in text
    assert "`pre-migration-snapshot` · #801 · `web-server-01` — :pushpin: pinned by <@U0ALICE>" in text
    assert "“before the migration " in text and "*really*" not in text  # the reason formats nothing
    assert "• :pushpin: `pre-migration-snapshot` · #801" in text  # marked among the recent snapshots too
    # Gone from VPS.org (deleted elsewhere): the stale pin is harmless and not shown.
    harness.sim.remove_snapshot(801)
    harness.bot.core.snapshots.listings.invalidate()
    text = text_of(open_home(harness, BOB))
    assert "Pinned snapshots" not in text and ":pushpin:" not in text


def test_a_delete_request_approved_after_the_pin_deletes_nothing(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL="C0APPROVE", APPROVAL_REQUIRED_FOR="restore,delete")
    h.driver.block_action("snapshot_delete_confirm", "798", user_id=BOB, channel_id=OPS)
    h.settle()
    delete_card = h.card()
    assert "Delete request #1" in delete_card.visible_text
    h.run("pin 798 evidence for the auditors", user=ALICE)  # pinned while the request waits
    h.click(delete_card, "Approve", user=CAROL)
    h.settle()
    assert h.api_calls("DELETE") == []
    card_now = h.card().visible_text
    assert "is pinned by U0ALICE" in card_now and "/snapshot unpin 798" in card_now  # the stored record form
    failed = h.audit(action="delete.approval_failed")
    assert len(failed) == 1 and failed[0].outcome == "refused" and failed[0].details["pinned_by"] == ALICE
    assert h.audit(action="delete.requested") == []  # no intent: nothing was ever on its way to VPS.org
