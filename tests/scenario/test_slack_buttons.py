"""Every button, clicked the way Slack sends it (`payload=` form posts), from the message it was in."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from devkit.simulator import VpsSimulator
from tests.app_fixtures import ALICE, BOB, OPS, Harness


def buttons(blocks: list[dict]) -> list[dict]:
    found = [b["accessory"] for b in blocks if b.get("accessory", {}).get("type") == "button"]
    found += [el for b in blocks for el in b.get("elements", []) if el.get("type") == "button"]
    return found


def big_simulator(servers: int, per_server: int) -> VpsSimulator:
    sim = VpsSimulator(seed=False, completion_delay=0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for s in range(servers):
        sid = 20000 + s
        sim.add_server(sid, f"host-{s:03d}")
        for n in range(per_server):
            sim.add_snapshot(sid, f"snap-{s}-{n}", created_at=start + timedelta(hours=s * 10 + n), size_mb=2048)
    return sim


def test_long_lists_are_paged_never_truncated(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(sim=big_simulator(servers=30, per_server=5))
    h.run("list")
    seen_servers: set[str] = set()
    pages = 0
    while True:
        message = h.last_ephemeral()
        pages += 1
        assert len(message.blocks) <= 50
        assert all(len(json.dumps(b)) < 12000 for b in message.blocks)
        seen_servers |= {f"host-{s:03d}" for s in range(30) if f"host-{s:03d}" in message.visible_text}
        more = [b for b in buttons(message.blocks) if b["action_id"] == "list_more"]
        if not more:
            break
        assert f"page {pages} of" in message.visible_text
        h.driver.block_action("list_more", more[0]["value"], user_id=ALICE, channel_id=OPS)
        h.settle()
        assert pages < 20
    assert pages > 1
    assert seen_servers == {f"host-{s:03d}" for s in range(30)}
    assert h.mutating_calls() == []


def test_show_more_pages_the_listing_its_first_page_came_from_shared_in_the_workspace(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(sim=big_simulator(servers=30, per_server=5))
    now = [1000.0]
    h.bot.core.snapshots.listings.clock = lambda: now[0]  # the cache's clock, moved by the test

    def gets() -> int:
        return sum(1 for r in h.sim.requests if r.method == "GET")

    def show_more(user: str = ALICE) -> None:
        more = [b for b in buttons(h.last_ephemeral(user).blocks) if b["action_id"] == "list_more"]
        h.driver.block_action("list_more", more[0]["value"], user_id=user, channel_id=OPS)
        h.settle()

    h.run("list")
    first_fetch = gets()
    assert first_fetch >= 2  # servers and snapshots
    show_more()
    show_more()
    assert "page 3 of" in h.last_ephemeral().visible_text
    assert gets() == first_fetch  # pages 2 and 3 come from the listing fetched for page 1

    now[0] += 61  # past the cache's TTL, but the listing shown is kept for its "Show more"
    show_more()
    assert "page 4 of" in h.last_ephemeral().visible_text
    assert gets() == first_fetch

    # Bob in the same workspace: his list within the TTL costs nothing; past it, one fetch, then shared again.
    h.run("list", user=BOB)
    assert gets() == 2 * first_fetch
    h.run("list", user=ALICE)
    assert gets() == 2 * first_fetch

    now[0] += 601  # the old listing is no longer kept: its "Show more" asks VPS.org again
    show_more()
    assert gets() == 3 * first_fetch
    assert h.mutating_calls() == []


def test_restore_button_in_a_list_starts_the_approval_flow(harness: Harness) -> None:
    harness.run("list 12345")
    restore = next(b for b in buttons(harness.last_ephemeral().blocks) if b["action_id"] == "snapshot_restore")
    harness.driver.block_action("snapshot_restore", restore["value"], user_id=BOB, channel_id=OPS)
    harness.settle()
    # The button opens the form with the reason first (tests/scenario/test_restore_form.py); submitted empty:
    form = harness.slack.wait_for("views.open")[-1].args["view"]
    harness.driver.view_submission(
        form["callback_id"],
        {"reason": {"value": {"type": "plain_text_input", "value": None}}},
        user_id=BOB,
        private_metadata=form["private_metadata"],
    )
    harness.settle()
    assert "Your restore request #1 is waiting for approval" in harness.last_ephemeral(BOB).visible_text
    assert any("Restore request #1" in m.visible_text for m in harness.channel(OPS))
    assert [r for r in harness.sim.requests if r.path.endswith("/restore/")] == []


def test_delete_button_in_a_list_asks_for_confirmation_then_cancel_removes_it(harness: Harness) -> None:
    harness.run("list 12345")
    delete = next(b for b in buttons(harness.last_ephemeral().blocks) if b["action_id"] == "snapshot_delete")
    harness.driver.block_action("snapshot_delete", delete["value"], user_id=ALICE, channel_id=OPS)
    harness.settle()
    confirmation = harness.last_ephemeral()
    assert "Delete snapshot `pre-migration-snapshot`" in confirmation.visible_text
    cancel = next(b for b in buttons(confirmation.blocks) if b["action_id"] == "dismiss")
    url = harness.slack.new_response_url(channel=OPS, user_id=ALICE)
    harness.driver.block_action("dismiss", cancel["value"], user_id=ALICE, channel_id=OPS, response_url=url)
    harness.settle()
    call = harness.slack.wait_for("response_url", where=lambda c: c.args.get("_url") == url)[-1]
    assert call.args.get("delete_original") is True
    assert harness.api_calls("DELETE") == []


def test_create_button_opens_the_form_with_the_server_filled_in(harness: Harness) -> None:
    harness.run("list 12346")
    create = next(b for b in buttons(harness.last_ephemeral().blocks) if b["action_id"] == "snapshot_create_open")
    harness.driver.block_action("snapshot_create_open", create["value"], user_id=ALICE, channel_id=OPS)
    view = harness.slack.wait_for("views.open")[-1].args["view"]
    server_input = next(b for b in view["blocks"] if b.get("block_id") == "server")
    assert server_input["element"]["type"] == "external_select"
    assert server_input["element"]["initial_option"] == {
        "text": {"type": "plain_text", "text": "db-server-01", "emoji": True},
        "value": "12346",
    }


def test_audit_older_button_pages_back(harness: Harness) -> None:
    for n in range(4):
        harness.run(f"create 12347 paged-{n}")
    harness.run("audit action:create limit:3")
    first = harness.last_ephemeral()
    older = next(b for b in buttons(first.blocks) if b["action_id"] == "audit_more")
    harness.driver.block_action("audit_more", older["value"], user_id=ALICE, channel_id=OPS)
    harness.settle()
    second = harness.last_ephemeral().visible_text
    first_ids = {line.split("`")[1] for line in first.visible_text.splitlines() if line.startswith("`")}
    second_ids = {line.split("`")[1] for line in second.splitlines() if line.startswith("`")}
    assert first_ids and second_ids and not first_ids & second_ids
    assert max(int(i) for i in second_ids) < min(int(i) for i in first_ids)


def test_unknown_and_forged_button_values_change_nothing(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    for action_id, value in [
        ("approval_reject", "²"),  # str.isdigit() says yes, int() says no
        ("snapshot_create_open", "²"),
        ("snapshot_delete_confirm", "not-a-number"),
        ("snapshot_delete_confirm", "99999999999999999999999"),
        ("snapshot_restore", "-1"),
        ("approval_approve", "12"),
        ("approval_cancel", "abc"),
        ("list_more", "{not json"),
        ("audit_more", "[]"),
        ("no_such_action", "1"),
    ]:
        response = harness.driver.block_action(action_id, value, user_id=ALICE, channel_id=OPS)
        assert response.status == 200, (action_id, response.body)
    harness.settle()
    assert harness.mutating_calls() == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a forged value made a listener fail"


def test_page_plan_counts_blocks_exactly_as_rendered() -> None:
    """The list pager counts blocks without rendering them; the count must match what is rendered."""
    from bot.slack import blocks as ui
    from bot.usecases.snapshots import ServerGroup
    from bot.vps.models import ServerRef, Snapshot

    now = datetime(2026, 1, 2, tzinfo=UTC)

    def snap(i: int, status: str) -> Snapshot:
        return Snapshot(i, ServerRef(1, "s"), f"n{i}", status, 10, now, "d" if i % 2 else "")

    for statuses in ([], ["completed"], ["in_progress"], ["completed", "in_progress", "weird", "completed"]):
        group = ServerGroup(ServerRef(1, "s"), "active", [snap(i, s) for i, s in enumerate(statuses)])
        assert ui._server_block_count(group) == len(ui._server_blocks(group, now))
