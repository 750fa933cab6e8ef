"""Limits that must not leak (issue 13 §6), through signed requests: the per-user rate limit under concurrency on
SQLite and PostgreSQL, deletes sent to approval counted, the approval channel's exemption covering only the
card's buttons, and the acting user's own Enterprise Grid org and team checked on every kind of request."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from devkit.slack_driver import DriverResponse
from tests.app_fixtures import ALICE, BOB, OPS, Harness

APPROVALS = "C0APPROVE"
ORG = "E0ORG"
HOME = "T0SNAPBOT"  # the fake workspace, part of the org in these tests
FORM = "application/x-www-form-urlencoded"


def signed(h: Harness, body: str, content_type: str = FORM) -> DriverResponse:
    raw = body.encode()
    return h.driver.send_raw(raw, {"Content-Type": content_type, **h.driver.sign(raw)})


def interaction(h: Harness, payload: dict[str, Any]) -> DriverResponse:
    return signed(h, urlencode({"payload": json.dumps(payload)}))


# ---- rate limit ---------------------------------------------------------------------------------------------
def test_concurrent_restore_requests_never_pass_the_rate_limit(
    database_url: str, make_harness: Callable[..., Harness]
) -> None:
    settings = {"SNAPSHOT_RATE_LIMIT": "2/hour", "SNAPSHOT_APPROVAL_CHANNEL": APPROVALS}
    h = make_harness(database_url=database_url, **settings)
    replica = make_harness(database_url=database_url, **settings)  # a second process on the same database
    # One server per request: a second open request on one server is refused on its own (issue 17 §1), and
    # only the rate limit may refuse here.
    for sim in (h.sim, replica.sim):
        for i in range(15):
            sim.add_server(30_000 + i, f"rate-{i}")
            sim.add_snapshot(30_000 + i, f"rate-snap-{i}", snapshot_id=3_000 + i)
    start = threading.Barrier(15)

    def ask(i: int) -> int:
        start.wait()
        return (h if i % 2 else replica).command(f"restore {3_000 + i}").status

    with ThreadPoolExecutor(max_workers=15) as pool:
        statuses = list(pool.map(ask, range(15)))
    replica.settle(60)
    h.settle(60)
    assert statuses == [200] * 15
    assert len(h.audit(action="restore.requested")) == 2
    assert len(h.audit(action="refused.rate_limited")) == 13
    cards = [m for m in h.channel(APPROVALS) if m.thread_ts is None]
    assert len(cards) == 2
    told = [e.visible_text for e in h.ephemerals(ALICE)]
    assert sum("reached the limit of 2 actions per hour" in t for t in told) == 13
    assert len(h.bot.core.approvals.open_requests()) == 2


def test_concurrent_creates_never_pass_the_rate_limit(database_url: str, make_harness: Callable[..., Harness]) -> None:
    h = make_harness(database_url=database_url, SNAPSHOT_RATE_LIMIT="3/hour")
    start = threading.Barrier(10)

    def ask(i: int) -> int:
        start.wait()
        return h.command(f"create 12347 burst-{i}").status

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert list(pool.map(ask, range(10))) == [200] * 10
    h.settle(60)
    assert len(h.api_calls("POST", "/api/v1/snapshots/")) == 3
    assert len(h.audit(action="create.requested")) == 3
    assert len(h.audit(action="refused.rate_limited")) == 7


def test_deletes_sent_to_approval_count_towards_the_rate_limit(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(
        SNAPSHOT_RATE_LIMIT="2/hour", SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, APPROVAL_REQUIRED_FOR="restore,delete"
    )
    for snapshot_id in ("805", "806"):
        clicked = h.driver.block_action("snapshot_delete_confirm", snapshot_id, user_id=ALICE, channel_id=OPS)
        assert clicked.status == 200
        h.settle()
    assert len(h.audit(action="delete.approval_requested")) == 2

    h.run("restore 801")
    assert "reached the limit of 2 actions per hour" in h.last_ephemeral(ALICE).visible_text
    assert h.audit(action="restore.requested") == []
    h.run("create 12347 third")
    assert h.mutating_calls() == []

    # The approver carrying out an approved delete is not charged for it: Bob can still start two of his own.
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert [r.method for r in h.mutating_calls()] == ["DELETE"]
    h.run("create 12347 bob-one", user=BOB)
    h.run("create 12347 bob-two", user=BOB)
    assert [c.json["name"] for c in h.api_calls("POST", "/api/v1/snapshots/")] == ["bob-one", "bob-two"]


# ---- the approval channel's exemption -----------------------------------------------------------------------
def test_commands_typed_in_the_approval_channel_obey_the_allow_list(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_ALLOWED_CHANNELS=OPS, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    for command in ("create 12347 from-approvals", "restore 801", "delete 798", "list"):
        h.run(command, channel=APPROVALS)
        assert f"Snapshot commands can only be used in <#{OPS}>" in h.last_ephemeral().visible_text, command
    assert h.driver.block_action("snapshot_delete_confirm", "798", user_id=ALICE, channel_id=APPROVALS).status == 200
    h.settle()
    assert h.sim.requests == [] and h.channel(APPROVALS) == []
    assert len(h.audit(action="refused.channel")) == 5

    # The card's own buttons keep working there.
    h.run("restore 801", channel=OPS)
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]


# ---- Enterprise Grid: the acting user's own org and team ----------------------------------------------------
def org_click(h: Harness, user_team: str, *, enterprise: str = ORG, value: str = "798") -> DriverResponse:
    return interaction(
        h,
        {
            "type": "block_actions",
            "team": {"id": HOME, "domain": "snapbot-test", "enterprise_id": enterprise},
            "enterprise": {"id": enterprise, "name": "Org"},
            "is_enterprise_install": False,
            "user": {"id": "U0GUEST", "username": "guest", "team_id": user_team},
            "api_app_id": h.slack.api_app_id,
            "channel": {"id": OPS, "name": "ops"},
            "container": {"type": "message", "channel_id": OPS},
            "actions": [{"action_id": "snapshot_delete_confirm", "value": value, "type": "button"}],
        },
    )


def test_a_foreign_users_click_is_refused_in_an_enterprise_org(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SLACK_TEAM_ID=ORG)
    for foreign in ("E0OTHERORG", "T0PARTNER"):
        assert org_click(h, foreign).status == 403, foreign
    h.settle()
    assert h.sim.requests == []
    refusals = h.audit(action="refused.team")
    assert {r.details["user_team"] for r in refusals} == {"E0OTHERORG", "T0PARTNER"}

    # The org's own users (Slack reports the org id, or the workspace the click came from) still get through.
    # One after the other (each click's delete runs after its ack): sent back to back, both could list 798 before
    # either deleted it, and the second would reach VPS.org too (seen on a loaded machine).
    for own in (ORG, HOME):
        assert org_click(h, own).status == 200, own
        h.settle()
    assert [r.method for r in h.mutating_calls()] == ["DELETE"]  # the second finds 798 already gone


def test_a_foreign_users_view_submission_is_refused_in_an_enterprise_org(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(SLACK_TEAM_ID=ORG, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    signed(
        h,
        urlencode(
            {
                "command": "/snapshot",
                "text": "restore 801",
                "user_id": ALICE,
                "channel_id": OPS,
                "team_id": HOME,
                "enterprise_id": ORG,
            }
        ),
    )
    h.settle()
    request_id = h.card().blocks[0]["text"]["text"].rsplit("#", 1)[1]
    submission = {
        "type": "view_submission",
        "team": {"id": HOME, "domain": "snapbot-test", "enterprise_id": ORG},
        "enterprise": {"id": ORG, "name": "Org"},
        "user": {"id": "U0GUEST", "username": "guest", "team_id": "E0OTHERORG"},
        "api_app_id": h.slack.api_app_id,
        "view": {
            "id": "V0REJECT",
            "type": "modal",
            "callback_id": "reject_request",
            "private_metadata": json.dumps({"request_id": int(request_id), "channel": APPROVALS}),
            "state": {"values": {"reason": {"value": {"type": "plain_text_input", "value": "no"}}}},
        },
    }
    assert interaction(h, submission).status == 403
    h.settle()
    assert h.audit(action="restore.rejected") == []
    assert h.audit(action="refused.team")[0].details["user_team"] == "E0OTHERORG"


def test_a_slash_command_or_event_naming_a_foreign_org_is_refused(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SLACK_TEAM_ID=ORG)
    form = {"command": "/snapshot", "text": "create 12347 guest", "user_id": "U0GUEST", "channel_id": OPS}
    # The workspace belongs to another org, or says nothing of its org: refused.
    answer = signed(h, urlencode(form | {"team_id": "T0PARTNER", "enterprise_id": "E0OTHERORG"}))
    assert "another Slack workspace" in answer.json()["text"]
    event = {
        "type": "event_callback",
        "team_id": "T0PARTNER",
        "enterprise_id": "E0OTHERORG",
        "api_app_id": h.slack.api_app_id,
        "event_id": "Ev0FOREIGN01",
        "event": {"type": "app_home_opened", "user": "U0GUEST", "tab": "home", "user_team": "T0PARTNER"},
        # The installation receiving it is ours: only the event's own fields name the user's org.
        "authorizations": [{"enterprise_id": ORG, "team_id": HOME, "user_id": "U0SNAPBOT", "is_bot": True}],
    }
    assert signed(h, json.dumps(event), "application/json").status == 200
    h.settle()
    assert h.sim.requests == [] and h.slack.calls_to("views.publish") == []
    assert len(h.audit(action="refused.team")) == 2
