"""The App Home tab: what each person sees when they open it, through signed `app_home_opened` events."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.slack.home import HOME_OPEN_CARD, HOME_REFRESH, home_view
from bot.usecases.context import utcnow
from bot.usecases.home import HomeOverview
from bot.vps.models import Server, ServerRef, Snapshot
from devkit.fake_slack import FakeView, blocks_text
from tests.app_fixtures import ALICE, BOB, CAROL, OPS, Harness
from tests.slack_safety import assert_no_unescaped_markup

APPROVALS = "C0APPROVE"


def open_home(h: Harness, user: str) -> FakeView:
    """Open the Home tab as `user` and wait (with a deadline) for the view Slack gets published."""
    published = len(h.slack.calls_to("views.publish"))
    response = h.driver.app_home_opened(user)
    assert response.status == 200
    h.slack.wait_for("views.publish", count=published + 1, timeout=10)
    view = h.slack.home_view(user)
    assert view is not None, f"no Home tab published for {user}"
    return view


def text_of(view: FakeView) -> str:
    return blocks_text(view.view["blocks"])


def buttons(view: FakeView) -> list[dict[str, object]]:
    found = []
    for block in view.view["blocks"]:
        found.extend(e for e in block.get("elements", []) if e.get("type") == "button")
        if block.get("accessory", {}).get("type") == "button":
            found.append(block["accessory"])
    return found


def test_home_shows_servers_with_counts_recent_snapshots_and_own_actions(harness: Harness) -> None:
    h = harness
    h.run("create 12347 cache-before-upgrade", user=ALICE)
    h.run("list", user=ALICE)
    view = open_home(h, ALICE)
    assert view.view["type"] == "home"
    text = text_of(view)
    assert "`web-server-01` (id 12345) · active — 2 of 5 snapshots" in text
    assert "`cache-01` (id 12347) · active — 1 of 5 snapshots" in text
    assert "`staging-01` (id 12348) · stopped — 5 of 5 snapshots — limit reached" in text
    assert text.index("`cache-before-upgrade`") < text.index("`db-nightly-2025-01-17`")  # newest first
    assert "Nothing is waiting for you." in text
    assert "`create.succeeded` · ok · snapshot #" in text and "`create.requested` · intent" in text
    assert "`list`" not in text  # reads are not "actions"
    # Opened again within the listing cache's TTL: served from the workspace's cache, no VPS.org call
    # (tests/scenario/test_read_cache.py has the rest of the cache's rules).
    lists = len(h.api_calls("GET", "snapshots/"))
    open_home(h, ALICE)
    assert len(h.api_calls("GET", "snapshots/")) == lists
    assert h.mutating_calls() == [h.api_calls("POST")[0]]  # the Home tab itself changes nothing


def test_each_person_sees_the_requests_they_can_act_on(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        SNAPSHOT_OPERATORS=f"{ALICE},{CAROL}",
        SNAPSHOT_APPROVERS=BOB,
    )
    h.run("restore 801", user=ALICE)
    card = [m for m in h.channel(APPROVALS) if "request #" in m.visible_text][-1]

    bob = open_home(h, BOB)
    assert "pre-migration-snapshot" in text_of(bob) and "Approve or reject it here or on the card." in text_of(bob)
    link = next(b for b in buttons(bob) if b["action_id"] == HOME_OPEN_CARD)
    assert link["url"] == f"https://snapbot-test.slack.com/archives/{APPROVALS}/p{card.ts.replace('.', '')}"

    alice = open_home(h, ALICE)
    assert "Your request — someone else has to approve it" in text_of(alice)

    carol = open_home(h, CAROL)  # an operator, not an approver: nothing she can do about it
    assert "pre-migration-snapshot →" not in text_of(carol) and "Nothing is waiting for you." in text_of(carol)

    h.click(card, "Approve", user=BOB)
    h.settle()
    assert "Nothing is waiting for you." in text_of(open_home(h, BOB))


def test_someone_without_a_role_sees_why_and_nothing_is_fetched(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_VIEWERS=ALICE)
    before = len(h.sim.requests)
    text = text_of(open_home(h, "U0STRANGER"))
    assert ":lock:" in text and "viewer" in text
    assert "web-server-01" not in text
    assert len(h.sim.requests) == before


def test_vps_trouble_is_explained_and_the_rest_still_shows(harness: Harness) -> None:
    h = harness
    h.run("create 12346 db-before", user=ALICE)
    h.sim.faults.rotate_token("vps_rotated_token_999")
    text = text_of(open_home(h, ALICE))
    assert "token was rejected" in text
    assert "`create.succeeded`" in text  # own actions come from the bot's database


def test_operations_in_progress_are_listed(make_harness: Callable[..., Harness]) -> None:
    from devkit.simulator import VpsSimulator

    h = make_harness(sim=VpsSimulator(completion_delay=10_000))
    h.run("create 12345 still-going", user=ALICE)
    text = text_of(open_home(h, BOB))
    assert "In progress" in text and "snapshot `still-going` of `web-server-01` — in progress" in text


def test_refresh_button_publishes_again(harness: Harness) -> None:
    h = harness
    view = open_home(h, ALICE)
    assert any(b["action_id"] == HOME_REFRESH for b in buttons(view))
    published = len(h.slack.calls_to("views.publish"))
    response = h.driver.block_action(HOME_REFRESH, "refresh", user_id=ALICE)
    assert response.status == 200
    h.slack.wait_for("views.publish", count=published + 1, timeout=10)


def test_the_view_stays_within_slacks_limits_for_many_servers() -> None:
    now = utcnow()
    servers = [Server(id=i, name=f"server-{i:04d}", status="active") for i in range(1, 401)]
    recent = [
        Snapshot(i, ServerRef(i, f"server-{i:04d}"), f"snap-{i}", "completed", 1024, now - timedelta(hours=i))
        for i in range(1, 9)
    ]
    view = home_view(
        HomeOverview(user_id=ALICE, now=now, servers=servers, counts={i: i % 6 for i in range(1, 401)}, recent=recent)
    )
    assert len(view["blocks"]) <= 100
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    text = blocks_text(view["blocks"])
    assert all(f"server-{i:04d}" in text for i in (1, 200, 400))


def test_every_request_shown_keeps_its_buttons_however_many_are_waiting() -> None:
    from bot.usecases.approvals import RequestView
    from bot.usecases.home import PendingRequest

    now = utcnow()

    def request(n: int) -> RequestView:
        return RequestView(
            id=n, kind="restore", state="pending", requester_id=ALICE, requester_name="alice", channel_id="C0OPS",
            snapshot_id=801, snapshot_name="pre-migration-snapshot", snapshot_status="completed",
            snapshot_size_mb=5120, snapshot_created_at=now, snapshot_description="", server_id=12345,
            server_name="web-server-01", approvals_required=1, approvers=(), created_at=now,
            expires_at=now + timedelta(hours=1), decided_by=None, decided_at=None, reason="", result_message="",
            card_channel="C0OPS", card_ts=f"1700000000.{n:06d}",
        )  # fmt: skip

    servers = [Server(id=i, name=f"server-{i:04d}", status="active") for i in range(1, 40)]
    view = home_view(
        HomeOverview(
            user_id=BOB,
            now=now,
            servers=servers,
            counts={},
            pending=[PendingRequest(request(n), yours=False) for n in range(1, 71)],
        )
    )
    blocks = view["blocks"]
    assert len(blocks) <= 100
    shown = [i for i, b in enumerate(blocks) if b["type"] == "section" and "*Restore #" in b["text"]["text"]]
    assert 10 < len(shown) < 70
    for index in shown:  # each request is followed by its own Approve/Reject
        actions = blocks[index + 1]
        assert actions["type"] == "actions" and actions["block_id"].startswith("home:")
        assert [e["action_id"] for e in actions["elements"]] == ["approval_approve", "approval_reject"]
    text = blocks_text(blocks)
    assert f"…and {70 - len(shown)} more: /snapshot pending lists every open request." in text.replace("`", "")
    assert "YOUR RECENT ACTIONS" in text.upper()  # the sections after it are not cut off


# ---- schedules (issue 18 §2) ---------------------------------------------------------------------------------------
def test_schedules_show_their_next_run_and_last_result_to_whoever_may_list_them(
    make_harness: Callable[..., Harness],
) -> None:
    from bot.background import Ticker

    now = [datetime(2026, 11, 30, 9, 0, tzinfo=UTC)]
    h = make_harness(SNAPSHOT_TIMEZONE="Europe/Berlin", SNAPSHOT_OPERATORS=ALICE, SNAPSHOT_VIEWERS=CAROL)
    h.bot.core.schedules.clock = h.bot.core.schedule_runner.clock = lambda: now[0]
    h.run("schedule 12347 hourly keep 1 on_full=rotate", user=ALICE)

    carol = text_of(open_home(h, CAROL))  # a viewer may list, so she sees them
    assert "SCHEDULES" in carol.upper()
    assert "#1 · `cache-01` (id 12347) · `hourly` (Europe/Berlin) · keep 1 · on_full=rotate" in carol
    assert f"Next run: 2026-11-30 11:00 CET · last: not run yet · by <@{ALICE}>" in carol

    now[0] += timedelta(hours=1)
    Ticker(h.bot.core, h.bot.slack.announcer, 60).tick()
    h.settle()
    assert "last: completed auto-1-20261130-1000" in text_of(open_home(h, CAROL))

    bob = text_of(open_home(h, BOB))  # no role: may not list, so no schedules either
    assert ":lock:" in bob and "SCHEDULES" not in bob.upper() and "cache-01" not in bob


def test_schedules_are_bounded_and_hostile_server_names_stay_text(harness: Harness) -> None:
    h = harness
    hostile = "evil <!channel> *bold* `tick` & <https://evil.example|click>"
    for n in range(12):
        h.sim.add_server(40_000 + n, f"{hostile}-{n}" if n < 2 else f"box-{n:02d}")
        h.run(f"schedule {40_000 + n} daily 02:30 keep 1", user=ALICE)
    assert "#12" in h.channel(OPS)[-1].visible_text  # all twelve were made

    view = open_home(h, BOB)
    text = text_of(view)
    assert "#10 · `box-09` (id 40009) · `daily 02:30` (UTC)" in text and "#11 · " not in text
    assert "…and 2 more — `/snapshot schedules` lists them all." in text
    assert len(view.view["blocks"]) <= 100
    assert_no_unescaped_markup(view.view)
    dumped = json.dumps(view.view)
    assert "<!channel>" not in dumped and "<https://evil.example" not in dumped
    # Shown as text, inside its code span: no ping, no link, no formatting, no way out of the span.
    assert "#1 · `evil &lt;!channel&gt; *bold* ˋtickˋ &amp; &lt;https://evil.example|click&gt;-0` (id 40000)" in text


# ---- a restore taking its safety snapshot (issue 18 §1) -------------------------------------------------------------
def test_a_restore_taking_its_safety_snapshot_is_in_progress(make_harness: Callable[..., Harness]) -> None:
    from devkit.simulator import FIRST_NEW_SNAPSHOT_ID, VpsSimulator

    h = make_harness(
        sim=VpsSimulator(completion_delay=10_000),
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        SNAPSHOT_OPERATORS=ALICE,
        SNAPSHOT_APPROVERS=BOB,
        RESTORE_SAFETY_SNAPSHOT="auto",
    )
    paused, resume = threading.Event(), threading.Event()

    def stall(_seconds: float) -> None:  # the step waits between two polls of the safety snapshot
        paused.set()
        resume.wait(20)

    h.bot.core.approvals.sleep = stall
    h.run("restore 801", user=ALICE)
    h.click(h.card(APPROVALS), "Approve (safety snapshot first)", user=BOB)
    assert paused.wait(20), "the safety step never started polling"
    try:
        text = text_of(open_home(h, ALICE))
        assert "In progress" in text
        assert (
            f"restore #1 of `pre-migration-snapshot` on `web-server-01`: taking the safety snapshot "
            f"`pre-restore-1` (#{FIRST_NEW_SNAPSHOT_ID}) (since "
        ) in text
        assert h.restore_posts() == []  # the Home tab only read the request: the restore is still held back
    finally:
        h.sim.complete_snapshot(FIRST_NEW_SNAPSHOT_ID)
        resume.set()
    h.settle()
    assert h.bot.core.approvals.get(1).state == "executed"
    assert "taking the safety snapshot" not in text_of(open_home(h, ALICE))
