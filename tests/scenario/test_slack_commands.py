"""`/snapshot` commands through signed HTTP requests, as Slack sends them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from urllib.parse import urlencode

import httpx

from devkit.fake_slack import blocks_text
from devkit.simulator import VpsSimulator
from tests.app_fixtures import ALICE, BOB, OPS, Harness
from tests.scenario.test_faults_vps import HoldingSimulator


def test_help_is_ephemeral_and_lists_every_command(harness: Harness) -> None:
    for text in ("", "help"):
        response = harness.command(text)
        assert response.status == 200
        body = response.json()
        assert body["response_type"] == "ephemeral"
        shown = blocks_text(body["blocks"])
        for command in ("list", "create", "delete", "restore", "pending", "audit"):
            assert f"/snapshot {command}" in shown
        assert "Access control is OFF" in shown or "access" in shown.lower()
    assert harness.mutating_calls() == []


def test_list_all_groups_by_server_with_quota_and_buttons(harness: Harness) -> None:
    harness.run("list")
    message = harness.last_ephemeral()
    text = message.visible_text
    assert "web-server-01" in text and "pre-migration-snapshot" in text and "weekly-snapshot-2025-01-08" in text
    assert "2 of 5 snapshots" in text
    assert "5.0 GB" in text and "days ago" in text and "Before major migration" in text
    labels = [
        el.get("text", {}).get("text")
        for b in message.blocks
        for el in b.get("elements", [])
        if el.get("type") == "button"
    ]
    assert "Restore" in labels and "Delete" in labels
    assert any(b.get("accessory", {}).get("action_id") == "snapshot_create_open" for b in message.blocks)
    assert harness.actions() == ["list"]


def test_list_one_server_and_unknown_server(harness: Harness) -> None:
    harness.run("list 12345")
    text = harness.last_ephemeral().visible_text
    assert "web-server-01" in text and "db-server" not in text
    harness.run("list 99999")
    assert "Server 99999 does not exist" in harness.last_ephemeral().visible_text


def test_bad_arguments_get_usage_and_change_nothing(harness: Harness) -> None:
    cases = {
        "list abc": "must be a whole number",
        "delete": "needs exactly one snapshot id",
        "delete 12 13": "needs exactly one snapshot id",
        "restore x1": "must be a whole number",
        "restore": "needs a snapshot id",
        "create 12345": "needs a server id and a name",
        "frobnicate": "I don't know `frobnicate`",
    }
    for text, expected in cases.items():
        response = harness.command(text)
        assert response.status == 200
        assert expected in response.json()["text"], text
        assert "Usage" in response.json()["text"] or "Commands" in response.json()["text"]
    harness.settle()
    assert harness.mutating_calls() == []
    assert set(harness.actions()) == {"refused.validation"}


def test_create_validates_then_creates_and_announces(harness: Harness) -> None:
    harness.run("create 12345 bad/name")
    assert "only letters, digits, hyphens and underscores" in harness.last_ephemeral().visible_text
    harness.run("create 12345 " + "x" * 65)
    assert "too long" in harness.last_ephemeral().visible_text
    assert harness.mutating_calls() == []

    harness.run("create 12345 before-update Snapshot before <!channel> update")
    posts = harness.api_calls("POST", "/api/v1/snapshots/")
    assert len(posts) == 1
    assert posts[0].json == {
        "server_id": 12345,
        "name": "before-update",
        "description": "Snapshot before <!channel> update",
    }
    announcement = harness.channel()[-1]
    assert f"<@{ALICE}>" in announcement.text and "before-update" in announcement.text
    assert "web-server-01" in announcement.text
    assert "<!channel>" not in json.dumps(announcement.blocks)  # escaped, pings nobody
    assert "&lt;!channel&gt;" in json.dumps(announcement.blocks)
    assert harness.actions()[-2:] == ["create.requested", "create.succeeded"]


def test_create_at_quota_offers_to_delete_oldest_without_calling_api(harness: Harness) -> None:
    harness.run("create 12348 one-too-many")
    message = harness.last_ephemeral()
    assert "5 of 5" in message.visible_text
    button = next(el for b in message.blocks for el in b.get("elements", []) if el.get("type") == "button")
    assert button["action_id"] == "snapshot_delete"
    assert harness.mutating_calls() == []


def test_create_api_errors_are_explained(harness: Harness) -> None:
    harness.sim.faults.fail_next(500, methods={"POST"})
    harness.run("create 12345 try-one")
    text = harness.last_ephemeral().visible_text
    assert "outcome is *unknown*" in text or "unknown" in text
    harness.sim.faults.rotate_token("vps_new_token_123456")
    harness.run("create 12345 try-two")
    assert "token was rejected" in harness.last_ephemeral().visible_text


def test_create_without_arguments_opens_the_form_and_validates_inline(harness: Harness) -> None:
    response = harness.command("create")
    assert response.status == 200
    opened = harness.slack.wait_for("views.open")
    view = opened[-1].args["view"]
    assert view["callback_id"] == "create_snapshot"
    assert "running" in json.dumps(view)  # the documented warning, where the user decides
    bad = harness.driver.view_submission(
        "create_snapshot",
        {
            "server": {"value": {"type": "plain_text_input", "value": "12345"}},
            "name": {"value": {"type": "plain_text_input", "value": "no spaces allowed"}},
            "description": {"value": {"type": "plain_text_input", "value": None}},
        },
        user_id=ALICE,
        private_metadata=view["private_metadata"],
    )
    assert bad.status == 200
    assert bad.json()["response_action"] == "errors" and "name" in bad.json()["errors"]
    good = harness.driver.view_submission(
        "create_snapshot",
        {
            "server": {"value": {"type": "plain_text_input", "value": "12346"}},
            "name": {"value": {"type": "plain_text_input", "value": "from-form"}},
            "description": {"value": {"type": "plain_text_input", "value": "via modal"}},
        },
        user_id=ALICE,
        private_metadata=view["private_metadata"],
    )
    assert good.status == 200 and not good.body
    harness.settle()
    assert [c.json["name"] for c in harness.api_calls("POST", "/api/v1/snapshots/")] == ["from-form"]
    assert "from-form" in harness.channel(OPS)[-1].text


def test_delete_needs_confirmation_click(harness: Harness) -> None:
    harness.run("delete 798")
    confirmation = harness.last_ephemeral()
    assert "weekly-snapshot-2025-01-08" in confirmation.visible_text
    button = next(
        el
        for b in confirmation.blocks
        for el in b.get("elements", [])
        if el.get("action_id") == "snapshot_delete_confirm"
    )
    assert button["style"] == "danger" and "confirm" in button
    assert harness.api_calls("DELETE") == []

    response = harness.driver.block_action("snapshot_delete_confirm", "798", user_id=BOB, channel_id=OPS)
    assert response.status == 200
    harness.settle()
    assert [c.path for c in harness.api_calls("DELETE")] == ["/api/v1/snapshots/798/"]
    assert any(f"<@{BOB}> deleted snapshot" in m.text for m in harness.channel())
    assert harness.actions()[-2:] == ["delete.requested", "delete.succeeded"]


def test_delete_unknown_snapshot(harness: Harness) -> None:
    harness.run("delete 4242")
    assert "Snapshot 4242 does not exist" in harness.last_ephemeral().visible_text
    harness.driver.block_action("snapshot_delete_confirm", "4242", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert harness.api_calls("DELETE") == []


def test_restore_command_never_calls_the_restore_endpoint(harness: Harness) -> None:
    harness.run("restore 801")
    assert harness.api_calls("POST") == []
    assert "waiting for approval" in harness.last_ephemeral().visible_text


def test_invalid_signature_and_stale_timestamp_are_refused(harness: Harness) -> None:
    body = urlencode(
        {"command": "/snapshot", "text": "create 12345 evil", "user_id": ALICE, "team_id": "T0SNAPBOT"}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    wrong = {
        **headers,
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    assert harness.driver.send_raw(body, wrong).status == 401
    stale = {**headers, **harness.driver.sign(body, timestamp=int(time.time()) - 3600)}
    assert harness.driver.send_raw(body, stale).status == 401
    assert harness.driver.send_raw(body, headers).status == 401
    harness.settle()
    assert harness.sim.requests == []


def test_healthz(harness: Harness) -> None:
    import httpx

    assert httpx.get(harness.server.url + "/healthz").status_code == 200
    assert httpx.get(harness.server.url + "/nope").status_code == 404


def test_healthz_fails_once_the_bot_takes_no_more_work(harness: Harness) -> None:
    import httpx

    harness.bot.core.work.shutdown(wait=True)
    assert httpx.get(harness.server.url + "/healthz").status_code == 503


def test_acks_stay_fast_while_vps_sits_on_every_call(make_harness: Callable[..., Harness]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # VPS.org holds every read until released: no answer can arrive while the acks are measured, and the test
    # waits for no clock (it used to give the simulator 5 s of latency and wait them out).
    slow_vps = HoldingSimulator(VpsSimulator(completion_delay=0), max_hold=30)
    try:
        harness = make_harness(
            SNAPSHOT_WORKER_THREADS="32",
            sim=slow_vps.sim,
            vps_transport=httpx.HTTPTransport(),
            VPS_API_URL=slow_vps.url,
        )
        slow_vps.hold("GET")
        with ThreadPoolExecutor(max_workers=30) as pool:
            responses = list(pool.map(lambda i: harness.command("list", user=f"U0USER{i:02d}"), range(30)))
        assert all(r.status == 200 for r in responses)
        # Slack gives 3 s; each ack came while VPS.org had answered nothing.
        assert max(r.elapsed for r in responses) < 2.5, sorted(r.elapsed for r in responses)[-3:]
        assert slow_vps.held.is_set() and not harness.slack.ephemerals
        slow_vps.release()
        harness.settle(30)
    finally:
        slow_vps.stop()
    # …and every one of them got its answer in the end.
    answered = {e.user for e in harness.slack.ephemerals if "snapshots on" in e.visible_text}
    assert answered == {f"U0USER{i:02d}" for i in range(30)}
