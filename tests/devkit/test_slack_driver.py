"""The driver's requests are Slack's: signatures verify, and a real slack_bolt App parses every field."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from devkit.fake_slack import FakeSlack
from devkit.slack_driver import DriverResponse, SlackDriver, http_sender, wsgi_sender
from devkit.wsgi_server import start_wsgi_in_thread

TOKEN = "xoxb-test-token"
SECRET = "test-signing-secret"

APPROVAL_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "Restore web-1?"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "req-7",
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "button",
                "action_id": "deny",
                "value": "req-7",
                "text": {"type": "plain_text", "text": "Deny"},
            },
        ],
    },
]


class Received:
    """What the Bolt listeners were handed, delivered across Bolt's worker threads."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    def put(self, kind: str, data: dict[str, Any]) -> None:
        self._queue.put((kind, data))

    def get(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        try:
            got_kind, data = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the {kind!r} listener was not called within {timeout}s") from None
        assert got_kind == kind, f"listener {got_kind!r} ran, expected {kind!r}"
        return data

    def empty(self) -> bool:
        return self._queue.empty()


def build_app(fake: FakeSlack, received: Received) -> App:
    app = App(
        signing_secret=SECRET,
        token_verification_enabled=False,
        # The client carries the token: Bolt ignores `token=` when `client=` is given too.
        client=WebClient(token=TOKEN, base_url=fake.api_url),
    )

    @app.command("/snapshot")
    def on_command(ack: Callable[..., None], command: dict[str, Any], respond: Callable[..., Any]) -> None:
        ack("Working on it")
        received.put("command", dict(command))
        respond(text=f"You asked for: {command['text']}")

    @app.action("approve")
    def on_approve(ack: Callable[..., None], body: dict[str, Any], respond: Callable[..., Any]) -> None:
        ack()
        received.put("action", body)
        respond(replace_original=True, text=f"Approved by <@{body['user']['id']}>")

    @app.view("restore_modal")
    def on_submit(ack: Callable[..., None], body: dict[str, Any], view: dict[str, Any]) -> None:
        if not view["state"]["values"]["snapshot"]["pick"]["value"]:
            ack(response_action="errors", errors={"snapshot": "Pick a snapshot"})
            return
        ack()
        received.put("view", body)

    @app.event("app_home_opened")
    def on_home(event: dict[str, Any], client: WebClient) -> None:
        received.put("event", event)
        client.views_publish(
            user_id=event["user"],
            view={
                "type": "home",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Snapshots"}}],
            },
        )

    return app


@pytest.fixture
def received() -> Received:
    return Received()


@pytest.fixture(params=["wsgi", "http"])
def driver(request: pytest.FixtureRequest, fake_slack: FakeSlack, received: Received) -> Iterator[SlackDriver]:
    """A driver talking to the Bolt app in-process (wsgi_sender) or over loopback HTTP (http_sender)."""
    handler = SlackRequestHandler(build_app(fake_slack, received))
    if request.param == "wsgi":
        yield SlackDriver(wsgi_sender(handler), SECRET, response_url_factory=fake_slack.new_response_url)
        return
    with start_wsgi_in_thread(handler) as server:
        sender = http_sender(server.url)
        yield SlackDriver(sender, SECRET, response_url_factory=fake_slack.new_response_url)
        sender.close()  # type: ignore[attr-defined]


# -- signatures ---------------------------------------------------------------------------------------------


def test_signatures_verify_with_slack_sdk() -> None:
    driver = SlackDriver(wsgi_sender(lambda environ, start_response: []), SECRET)
    body = b"token=x&text=list+web-1"

    headers = driver.sign(body)

    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not SignatureVerifier("another-secret").is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert not verifier.is_valid(body + b"x", headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])


def test_signature_uses_the_given_timestamp_and_clock() -> None:
    driver = SlackDriver(wsgi_sender(lambda environ, start_response: []), SECRET, clock=lambda: 1_700_000_123.9)

    assert driver.sign(b"x")["X-Slack-Request-Timestamp"] == "1700000123"
    assert driver.sign(b"x", timestamp=42)["X-Slack-Request-Timestamp"] == "42"
    assert driver.sign(b"x", timestamp=42) != driver.sign(b"y", timestamp=42)


def test_app_rejects_wrong_secret_stale_timestamp_and_tampered_body(fake_slack: FakeSlack, received: Received) -> None:
    send = wsgi_sender(SlackRequestHandler(build_app(fake_slack, received)))
    good = SlackDriver(send, SECRET)
    body = b"command=%2Fsnapshot&text=list&user_id=U0ALICE&team_id=T0SNAPBOT"

    wrong_secret = SlackDriver(send, "not-the-secret").command("list", user_id="U0ALICE")
    stale = SlackDriver(send, SECRET, clock=lambda: 1_000_000_000.0).command("list", user_id="U0ALICE")
    tampered = good.send_raw(body + b"x", {"Content-Type": "application/x-www-form-urlencoded", **good.sign(body)})
    unsigned = good.send_raw(body, {"Content-Type": "application/x-www-form-urlencoded"})

    assert [r.status for r in (wrong_secret, stale, tampered, unsigned)] == [401, 401, 401, 401]
    assert received.empty()
    assert fake_slack.calls_to("response_url") == []


# -- the app receives the right fields -----------------------------------------------------------------------


def test_slash_command_fields_reach_the_listener(
    driver: SlackDriver, fake_slack: FakeSlack, received: Received
) -> None:
    response = driver.command("list web-1", user_id="U0ALICE", channel_id="C0OPS")
    command = received.get("command")
    other = driver.command("list web-2", user_id="U0BOB", user_name="bob.b")
    other_command = received.get("command")

    assert (response.status, response.body) == (200, "Working on it")
    assert other.status == 200
    assert response.elapsed >= 0
    assert command["text"] == "list web-1"
    assert command["command"] == "/snapshot"
    assert (command["user_id"], command["user_name"]) == ("U0ALICE", "u0alice")
    assert (command["channel_id"], command["team_id"], command["api_app_id"]) == (
        "C0OPS",
        "T0SNAPBOT",
        "A0SNAPBOT",
    )
    assert command["team_domain"] and command["channel_name"] and command["token"]
    assert other_command["user_name"] == "bob.b"
    assert command["trigger_id"] != other_command["trigger_id"]
    assert command["response_url"].startswith(fake_slack.base_url + "/response/")
    # The listener's respond() went to the response_url and Alice alone sees it.
    fake_slack.wait_for("response_url", count=2)
    assert [e.text for e in fake_slack.ephemerals_for("U0ALICE")] == ["You asked for: list web-1"]


def test_button_click_reaches_the_listener_and_replaces_the_message(
    driver: SlackDriver, fake_slack: FakeSlack, received: Received
) -> None:
    ts = WebClient(token=TOKEN, base_url=fake_slack.api_url).chat_postMessage(
        channel="C0APPROVE", text="Restore web-1?", blocks=APPROVAL_BLOCKS
    )["ts"]
    message = fake_slack.message("C0APPROVE", ts)

    response = driver.click(message, "Approve", user_id="U0BOB")
    body = received.get("action")

    assert response.status == 200
    assert body["type"] == "block_actions"
    assert body["user"]["id"] == "U0BOB" and body["user"]["username"] == "u0bob"
    [action] = body["actions"]
    assert (action["action_id"], action["value"], action["block_id"], action["type"]) == (
        "approve",
        "req-7",
        "decide",
        "button",
    )
    assert action["text"]["text"] == "Approve"
    assert body["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0APPROVE",
        "is_ephemeral": False,
    }
    assert body["channel"]["id"] == "C0APPROVE"
    assert body["message"]["ts"] == ts and body["message"]["blocks"] == APPROVAL_BLOCKS
    assert body["team"]["id"] == "T0SNAPBOT" and body["trigger_id"]
    # respond(replace_original=True) rewrote the message everyone sees.
    fake_slack.wait_for("response_url")
    [shown] = fake_slack.messages("C0APPROVE")
    assert (shown.ts, shown.text, shown.updates) == (ts, "Approved by <@U0BOB>", 1)


def test_block_action_with_explicit_arguments(driver: SlackDriver, fake_slack: FakeSlack, received: Received) -> None:
    url = fake_slack.new_response_url(channel="C0OPS", user_id="U0BOB")

    response = driver.block_action(
        "approve", "req-9", user_id="U0BOB", block_id="blk", response_url=url, trigger_id="1.2.3"
    )
    body = received.get("action")

    assert response.status == 200
    assert (body["actions"][0]["value"], body["actions"][0]["block_id"]) == ("req-9", "blk")
    assert (body["response_url"], body["trigger_id"]) == (url, "1.2.3")
    assert body["container"]["channel_id"] == "C0OPS" and body["container"]["is_ephemeral"] is True
    assert "message" not in body
    # With no message to replace, Slack shows the response to the clicker only.
    fake_slack.wait_for("response_url")
    [ephemeral] = fake_slack.ephemerals_for("U0BOB")
    assert (ephemeral.text, ephemeral.replace_original) == ("Approved by <@U0BOB>", True)


def test_view_submission_values_reach_the_listener(driver: SlackDriver, received: Received) -> None:
    values = {"snapshot": {"pick": {"type": "plain_text_input", "value": "snap-123"}}}

    response = driver.view_submission("restore_modal", values, user_id="U0ALICE", private_metadata="server=42")
    body = received.get("view")

    assert (response.status, response.body) == (200, "")
    assert body["type"] == "view_submission"
    assert body["user"]["id"] == "U0ALICE"
    assert body["view"]["callback_id"] == "restore_modal"
    assert body["view"]["private_metadata"] == "server=42"
    assert body["view"]["state"]["values"] == values


def test_view_submission_errors_come_back_in_the_response(driver: SlackDriver, received: Received) -> None:
    values = {"snapshot": {"pick": {"type": "plain_text_input", "value": ""}}}

    response = driver.view_submission("restore_modal", values, user_id="U0ALICE")

    assert response.status == 200
    assert response.json() == {"response_action": "errors", "errors": {"snapshot": "Pick a snapshot"}}
    assert received.empty()


def test_app_home_opened_event(driver: SlackDriver, fake_slack: FakeSlack, received: Received) -> None:
    response = driver.app_home_opened("U0ALICE")
    event = received.get("event")

    assert response.status == 200
    assert (event["type"], event["user"], event["tab"]) == ("app_home_opened", "U0ALICE", "home")
    fake_slack.wait_for("views.publish")
    home = fake_slack.home_view("U0ALICE")
    assert home is not None and home.view["blocks"][0]["text"]["text"] == "Snapshots"


def test_fifty_concurrent_commands_over_http(fake_slack: FakeSlack, received: Received) -> None:
    with start_wsgi_in_thread(SlackRequestHandler(build_app(fake_slack, received))) as server:
        driver = SlackDriver(http_sender(server.url), SECRET, response_url_factory=fake_slack.new_response_url)
        barrier = threading.Barrier(50)

        def send(n: int) -> DriverResponse:
            barrier.wait(timeout=10)
            return driver.command(f"list web-{n}", user_id="U0ALICE")

        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(send, range(50)))
        fake_slack.wait_for("response_url", count=50, timeout=20)

    assert [r.status for r in responses] == [200] * 50
    texts = sorted(received.get("command")["text"] for _ in range(50))
    assert texts == sorted(f"list web-{n}" for n in range(50))


# -- wire format --------------------------------------------------------------------------------------------


class Capture:
    """A Sender that keeps the request instead of delivering it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    def __call__(self, path: str, headers: dict[str, str], body: bytes, /) -> DriverResponse:
        self.requests.append((path, headers, body))
        return DriverResponse(status=200, body="", headers={}, elapsed=0.0)


def test_wire_formats_match_slack() -> None:
    capture = Capture()
    driver = SlackDriver(capture, SECRET)

    driver.command("list", user_id="U0ALICE")
    driver.block_action("approve", "req-1", user_id="U0ALICE")
    driver.app_home_opened("U0ALICE")

    (c_path, c_headers, c_body), (a_path, a_headers, a_body), (e_path, e_headers, e_body) = capture.requests
    assert c_path == a_path == e_path == "/slack/events"
    assert c_headers["Content-Type"] == a_headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert e_headers["Content-Type"] == "application/json"
    form = parse_qs(c_body.decode())
    assert set(form) >= {
        "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
        "command", "text", "api_app_id", "response_url", "trigger_id",
    }  # fmt: skip
    # No response_url given and no factory: a placeholder that can never leave the machine.
    placeholder = urlsplit(form["response_url"][0])
    assert placeholder.scheme == "https" and placeholder.hostname is not None
    assert placeholder.hostname.endswith(".invalid")
    assert list(parse_qs(a_body.decode())) == ["payload"]
    assert json.loads(parse_qs(a_body.decode())["payload"][0])["type"] == "block_actions"
    envelope = json.loads(e_body)
    assert envelope["type"] == "event_callback" and envelope["event"]["type"] == "app_home_opened"
    for _, headers, body in capture.requests:
        verifier = SignatureVerifier(SECRET)
        assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])


def test_empty_response_json_explains_itself() -> None:
    with pytest.raises(ValueError, match="empty body"):
        DriverResponse(status=200, body="", headers={}, elapsed=0.0).json()
