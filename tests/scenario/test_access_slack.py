"""Access control through signed Slack requests: each role allowed and refused for each action, user groups
(including a failing usergroups.users.list), the channel allow-list and open mode."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_settings
from bot.server import start_bot
from devkit.fake_slack import FakeSlack
from devkit.local import local_env
from devkit.simulator import VpsSimulator
from tests.app_fixtures import ALICE, BOB, OPS, Harness

APPROVALS = "C0APPROVE"
NOBODY = "U0NOBODY"
VIEWER = "U0VIEW"
OPERATOR = "U0OPER"
APPROVER = "U0APPR"
ADMIN = "U0ADMIN"
EVERYONE = (NOBODY, VIEWER, OPERATOR, APPROVER, ADMIN)
RANK = {NOBODY: 0, VIEWER: 1, OPERATOR: 2, APPROVER: 3, ADMIN: 4}
ROLE_NAMES = {1: "viewer", 2: "operator", 3: "approver", 4: "admin"}
ROLES = {
    "SNAPSHOT_VIEWERS": VIEWER,
    "SNAPSHOT_OPERATORS": OPERATOR,
    "SNAPSHOT_APPROVERS": APPROVER,
    "SNAPSHOT_ADMINS": ADMIN,
    "SNAPSHOT_APPROVAL_CHANNEL": APPROVALS,
}


@pytest.fixture
def h(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(**ROLES)


# ---- helpers ------------------------------------------------------------------------------------------------
def refusals(h: Harness, user: str) -> list[dict[str, Any]]:
    return [r.details for r in h.audit(actor_id=user, action="refused.permission")]


def attempt(h: Harness, user: str, act: Callable[[], Any]) -> tuple[str, list[Any]]:
    """Do `act`, wait for the bot, and return what `user` was last told and the VPS.org calls it caused."""
    before = len(h.sim.requests)
    seen = len(h.ephemerals(user))
    act()
    h.settle()
    told = h.ephemerals(user)
    text = told[-1].visible_text if len(told) > seen else ""
    return text, h.sim.requests[before:]


def assert_refused(h: Harness, user: str, text: str, calls: list[Any], role: str, doing: str) -> None:
    assert f"You need the *{role}* role to {doing}" in text, text
    assert calls == [], f"a refused {user} reached VPS.org: {calls}"
    assert any(d["required_role"] == role for d in refusals(h, user)), h.actions(actor_id=user)


def click_as(h: Harness, action_id: str, value: str, user: str, channel: str = OPS) -> None:
    response = h.driver.block_action(action_id, value, user_id=user, channel_id=channel)
    assert response.status == 200, response.body


# ---- each action, each role ---------------------------------------------------------------------------------
def test_list_needs_viewer(h: Harness) -> None:
    for user in EVERYONE:
        text, calls = attempt(h, user, lambda u=user: h.run("list", user=u))
        if RANK[user] >= 1:  # from VPS.org, or from the workspace's listing cache after the first one
            assert "web-server-01" in text, user
        else:
            assert_refused(h, user, text, calls, "viewer", "list snapshots")
            assert "SNAPSHOT_VIEWERS" in text


def test_create_needs_operator(h: Harness) -> None:
    for user in EVERYONE:
        name = f"by-{user[2:].lower()}"
        text, calls = attempt(h, user, lambda u=user, n=name: h.run(f"create 12347 {n}", user=u))
        if RANK[user] >= 2:
            assert [(c.method, c.json["name"]) for c in calls if c.method == "POST"] == [("POST", name)], user
        else:
            assert_refused(h, user, text, calls, "operator", "create snapshots")
    created = {c.json["name"] for c in h.api_calls("POST", "/api/v1/snapshots/")}
    assert created == {"by-oper", "by-appr", "by-admin"}


def test_delete_confirmation_click_needs_operator(h: Harness) -> None:
    snapshot_for = dict(zip(EVERYONE, (805, 806, 807, 801, 798), strict=True))
    for user in EVERYONE:
        sid = str(snapshot_for[user])
        text, calls = attempt(h, user, lambda u=user, s=sid: click_as(h, "snapshot_delete_confirm", s, u))
        if RANK[user] >= 2:
            assert [(c.method, c.path) for c in calls if c.method == "DELETE"] == [
                ("DELETE", f"/api/v1/snapshots/{sid}/")
            ], user
        else:
            assert_refused(h, user, text, calls, "operator", "delete snapshots")
    # The `delete` command (which only shows the confirmation) is refused the same way.
    text, calls = attempt(h, VIEWER, lambda: h.run("delete 798", user=VIEWER))
    assert_refused(h, VIEWER, text, calls, "operator", "delete snapshots")


def test_restore_request_needs_operator(h: Harness) -> None:
    # One snapshot per server for those allowed: a second open request on a server is refused (issue 17 §1).
    free = iter((801, 805, 810))
    for user in EVERYONE:
        sid = next(free) if RANK[user] >= 2 else 801
        text, calls = attempt(h, user, lambda u=user, sid=sid: h.run(f"restore {sid}", user=u))
        assert h.restore_calls() == []  # a request never restores by itself
        if RANK[user] >= 2:
            assert "waiting for approval" in text, (user, text)
        else:
            assert_refused(h, user, text, calls, "operator", "request a restore")
    assert len([r for r in h.audit(action="restore.requested")]) == 3


def test_approve_needs_approver_and_never_ones_own(h: Harness) -> None:
    h.run("restore 801", user=OPERATOR)
    first = h.card()
    for user in (NOBODY, VIEWER, OPERATOR):
        text, calls = attempt(h, user, lambda u=user: h.click(first, "Approve", user=u))
        assert_refused(h, user, text, calls, "approver", "approve or reject requests")
    assert h.restore_calls() == []
    h.click(first, "Approve", user=APPROVER)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]

    # An admin approves too (roles are cumulative), but not a request of their own.
    h.run("restore 805", user=ADMIN)
    own = h.card()
    text, _ = attempt(h, ADMIN, lambda: h.click(own, "Approve", user=ADMIN))
    assert "can't approve your own request" in text
    h.run("restore 810", user=OPERATOR)  # another server: 805's request is still open on 12346
    h.click(h.card(), "Approve", user=ADMIN)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/", "/api/v1/snapshots/810/restore/"]


def test_reject_needs_approver(h: Harness) -> None:
    h.run("restore 801", user=OPERATOR)
    target = h.card()
    h.click(target, "Reject", user=APPROVER)
    opened = h.slack.wait_for("views.open")[-1].args["view"]

    def submit(user: str, reason: str) -> None:
        response = h.driver.view_submission(
            opened["callback_id"],
            {"reason": {"value": {"type": "plain_text_input", "value": reason}}},
            user_id=user,
            private_metadata=opened["private_metadata"],
        )
        assert response.status == 200, response.body

    for user in (NOBODY, VIEWER):
        text, calls = attempt(h, user, lambda u=user: submit(u, "no"))
        assert_refused(h, user, text, calls, "approver", "approve or reject requests")
    assert "Rejected" not in h.card().visible_text
    submit(APPROVER, "not during peak")
    h.settle()
    assert f"Rejected by <@{APPROVER}>" in h.card().visible_text
    assert h.restore_calls() == []


def test_audit_own_needs_viewer_and_everyones_needs_admin(h: Harness) -> None:
    h.run("list", user=OPERATOR)
    h.run("list", user=VIEWER)
    for user in EVERYONE:
        text, calls = attempt(h, user, lambda u=user: h.run("audit", user=u))
        assert calls == []
        if RANK[user] == 0:
            assert_refused(h, user, text, calls, "viewer", "read the audit log")
        elif user == ADMIN:
            assert f"<@{OPERATOR}>" in text and f"<@{VIEWER}>" in text, text
        else:  # their own events only
            others = [u for u in EVERYONE if u != user]
            assert not any(f"<@{other}>" in text for other in others), (user, text)

    for user in (VIEWER, OPERATOR, APPROVER):
        text, _ = attempt(h, user, lambda u=user: h.run(f"audit user:<@{OPERATOR}|oper>", user=u))
        if user != OPERATOR:
            assert "Only admins can read other people's audit events" in text, text
    text, _ = attempt(h, ADMIN, lambda: h.run(f"audit user:<@{OPERATOR}|oper>", user=ADMIN))
    assert f"<@{OPERATOR}>" in text and "list" in text


def test_identity_is_the_user_id_never_the_name(h: Harness) -> None:
    response = h.driver.command("create 12347 sneaky", user_id=NOBODY, user_name="U0ADMIN", channel_id=OPS)
    assert response.status == 200
    h.settle()
    assert "You need the *operator* role" in h.last_ephemeral(NOBODY).visible_text
    assert h.mutating_calls() == []


# ---- user groups ------------------------------------------------------------------------------------------
def test_group_members_get_the_groups_role_and_lookups_are_cached(
    make_harness: Callable[..., Harness], fake_slack: FakeSlack
) -> None:
    fake_slack.usergroup_members["S0OPS"] = [ALICE]
    h = make_harness(SNAPSHOT_OPERATORS="S0OPS", SNAPSHOT_VIEWERS=BOB)
    h.run("create 12347 from-group", user=ALICE)
    h.run("create 12347 second-one", user=ALICE)
    assert [c.json["name"] for c in h.api_calls("POST", "/api/v1/snapshots/")] == ["from-group", "second-one"]
    lookups = fake_slack.calls_to("usergroups.users.list")
    assert [c.args.get("usergroup") for c in lookups] == ["S0OPS"]  # the second check used the cache

    text, calls = attempt(h, BOB, lambda: h.run("create 12347 not-bob", user=BOB))
    assert_refused(h, BOB, text, calls, "operator", "create snapshots")
    h.run("list", user=BOB)  # BOB's own role still works
    assert "web-server-01" in h.last_ephemeral(BOB).visible_text


def test_failing_group_lookup_refuses_clearly_and_is_audited(
    make_harness: Callable[..., Harness], fake_slack: FakeSlack
) -> None:
    fake_slack.usergroup_members["S0OPS"] = [ALICE]
    h = make_harness(SNAPSHOT_OPERATORS="S0OPS")
    fake_slack.fail_next("usergroups.users.list", error="missing_scope")
    text, calls = attempt(h, ALICE, lambda: h.run("create 12347 blocked", user=ALICE))
    assert "Couldn't check your group membership with Slack" in text and "missing_scope" in text, text
    assert "try again" in text.lower()
    assert calls == []
    [refusal] = refusals(h, ALICE)
    assert refusal["resolution_error"] is True and refusal["required_role"] == "operator"
    assert fake_slack.bot_token not in json.dumps(refusal)

    # A failure is not cached: the next attempt looks the group up again and goes through.
    h.run("create 12347 unblocked", user=ALICE)
    assert [c.json["name"] for c in h.api_calls("POST", "/api/v1/snapshots/")] == ["unblocked"]


def test_listed_users_do_not_depend_on_group_lookups(
    make_harness: Callable[..., Harness], fake_slack: FakeSlack
) -> None:
    h = make_harness(SNAPSHOT_OPERATORS=f"{BOB},S0OPS")
    fake_slack.fail_next("usergroups.users.list", status=500, times=5)
    h.run("create 12347 by-bob", user=BOB)
    assert [c.json["name"] for c in h.api_calls("POST", "/api/v1/snapshots/")] == ["by-bob"]


# ---- channels ---------------------------------------------------------------------------------------------
def test_commands_only_in_allowed_channels_but_approvals_work_in_the_approval_channel(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(SNAPSHOT_ALLOWED_CHANNELS=OPS, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    for command in ("list", "create 12347 elsewhere", "restore 801"):
        text, calls = attempt(h, ALICE, lambda c=command: h.run(c, channel="C0RANDOM"))
        assert f"Snapshot commands can only be used in <#{OPS}>" in text, text
        assert calls == []
    refused = h.audit(action="refused.channel")
    assert len(refused) == 3 and {r.channel_id for r in refused} == {"C0RANDOM"}

    h.run("restore 801", channel=OPS)
    h.click(h.card(), "Approve", user=BOB)  # the card lives in the approval channel
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]


# ---- open mode ----------------------------------------------------------------------------------------------
def test_help_says_whether_access_control_is_on(make_harness: Callable[..., Harness]) -> None:
    open_bot = make_harness()
    shown = json.dumps(open_bot.command("help").json())
    assert "Access control is OFF" in shown
    closed = make_harness(SNAPSHOT_OPERATORS=f"{ALICE},S0OPS", SNAPSHOT_ADMINS=BOB)
    shown = json.dumps(closed.command("help", user=NOBODY).json())
    assert "Access control is ON" in shown and "admins: 1 user" in shown and "operators: 1 user and 1 group" in shown


def test_open_mode_warns_loudly_at_start_up(
    tmp_path: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    sim = VpsSimulator(completion_delay=0)

    def start(name: str, **env: str) -> list[logging.LogRecord]:
        caplog.clear()
        settings = load_settings(local_env(fake_slack, sim, f"sqlite:///{tmp_path / name}", **env), dotenv_path=None)
        with caplog.at_level(logging.WARNING):
            bot = start_bot(settings)
        bot.close()
        return [r for r in caplog.records if "ACCESS CONTROL IS OFF" in r.getMessage()]

    warnings = start("open.db")
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "everyone in the workspace" in warnings[0].getMessage()
    assert start("closed.db", SNAPSHOT_VIEWERS=ALICE) == []
