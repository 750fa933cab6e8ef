"""The fake Slack answers slack_sdk's real WebClient/WebhookClient as Slack does, and records what it got."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from devkit.fake_slack import FakeSlack, SlackCall, blocks_text
from devkit.wsgi_server import start_wsgi_in_thread

TOKEN = "xoxb-test-token"

APPROVAL_BLOCKS: list[dict[str, Any]] = [
    {
        "type": "section",
        "block_id": "summary",
        "text": {"type": "mrkdwn", "text": "*Restore* web-1 requested"},
    },
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "req-1",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "button",
                "action_id": "deny",
                "value": "req-1",
                "text": {"type": "plain_text", "text": "Deny"},
            },
        ],
    },
]


def client_for(fake: FakeSlack, token: str = TOKEN) -> WebClient:
    return WebClient(token=token, base_url=fake.api_url, timeout=5)


def modal(title: str = "Restore snapshot") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "restore_modal",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Restore"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Pick a snapshot"}}],
        "private_metadata": "server=42",
    }


# -- Web API methods ----------------------------------------------------------------------------------------


def test_auth_test_identifies_the_bot(fake_slack: FakeSlack) -> None:
    answer = client_for(fake_slack).auth_test()

    assert answer["ok"] is True
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == ("T0SNAPBOT", "U0SNAPBOT", "B0SNAPBOT")
    assert answer["url"].startswith("https://")
    assert fake_slack.calls_to("auth.test")[0].token == TOKEN


def test_post_then_update_is_what_the_channel_shows(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)

    posted = client.chat_postMessage(channel="C0OPS", text="Restore requested", blocks=APPROVAL_BLOCKS)
    second = client.chat_postMessage(channel="C0OPS", text="another")
    client.chat_update(
        channel="C0OPS",
        ts=posted["ts"],
        text="Restore approved",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@U2>"}}],
    )

    assert posted["channel"] == "C0OPS"
    assert posted["ts"] != second["ts"]
    assert float(posted["ts"]) < float(second["ts"])
    call = fake_slack.calls_to("chat.postMessage")[0]
    assert call.args["blocks"] == APPROVAL_BLOCKS
    assert call.args["channel"] == "C0OPS"
    shown = fake_slack.messages("C0OPS")
    assert [m.ts for m in shown] == [posted["ts"], second["ts"]]
    assert shown[0].text == "Restore approved"
    assert shown[0].visible_text == "Restore approved\nApproved by <@U2>"
    assert shown[0].updates == 1
    assert shown[0].user == "U0SNAPBOT"
    assert shown[1].updates == 0


def test_update_without_blocks_keeps_them_like_slack(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    posted = client.chat_postMessage(channel="C0OPS", text="v1", blocks=APPROVAL_BLOCKS)

    client.chat_update(channel="C0OPS", ts=posted["ts"], text="v2")

    message = fake_slack.message("C0OPS", posted["ts"])
    assert (message.text, message.blocks) == ("v2", APPROVAL_BLOCKS)


def test_form_encoded_blocks_arrive_decoded(fake_slack: FakeSlack) -> None:
    # WebClient sends some methods form-encoded, with blocks as a JSON string field.
    client = client_for(fake_slack)
    client.api_call("chat.postMessage", data={"channel": "C0OPS", "text": "hi", "blocks": json.dumps(APPROVAL_BLOCKS)})

    assert fake_slack.calls_to("chat.postMessage")[0].args["blocks"] == APPROVAL_BLOCKS
    assert fake_slack.messages("C0OPS")[0].blocks == APPROVAL_BLOCKS


def test_update_of_unknown_message_is_message_not_found(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as raised:
        client_for(fake_slack).chat_update(channel="C0OPS", ts="1.000001", text="x")

    assert raised.value.response["error"] == "message_not_found"
    assert fake_slack.calls_to("chat.update")[0].error == "message_not_found"


def test_posting_to_a_user_lands_in_their_dm_channel(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    posted = client.chat_postMessage(channel="U0ALICE", text="your restore was approved")

    assert posted["channel"] == "D0ALICE"
    assert fake_slack.messages("D0ALICE")[0].text == "your restore was approved"
    with pytest.raises(SlackApiError, match="message_not_found"):
        client.chat_update(channel="U0ALICE", ts=posted["ts"], text="edited")


def test_ephemeral_is_recorded_for_that_user(fake_slack: FakeSlack) -> None:
    answer = client_for(fake_slack).chat_postEphemeral(
        channel="C0OPS", user="U0BOB", text="Only you can see this", blocks=APPROVAL_BLOCKS[:1]
    )

    assert answer["message_ts"]
    [ephemeral] = fake_slack.ephemerals_for("U0BOB")
    assert (ephemeral.channel, ephemeral.text, ephemeral.source) == (
        "C0OPS",
        "Only you can see this",
        "chat.postEphemeral",
    )
    assert ephemeral.blocks == APPROVAL_BLOCKS[:1]
    assert fake_slack.messages("C0OPS") == []


def test_permalink_points_at_the_message(fake_slack: FakeSlack) -> None:
    answer = client_for(fake_slack).chat_getPermalink(channel="C0OPS", message_ts="1700000001.000100")

    assert answer["permalink"].endswith("/archives/C0OPS/p1700000001000100")


def test_views_open_update_and_publish(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)

    opened = client.views_open(trigger_id="123.456.abc", view=modal())
    view_id = opened["view"]["id"]
    client.views_update(view_id=view_id, view=modal("Restoring…"))
    published = client.views_publish(
        user_id="U0ALICE",
        view={"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]},
    )

    assert opened["view"]["callback_id"] == "restore_modal"
    assert opened["view"]["private_metadata"] == "server=42"
    assert fake_slack.calls_to("views.open")[0].args["view"]["blocks"] == modal()["blocks"]
    assert fake_slack.view(view_id).view["title"]["text"] == "Restoring…"
    assert [v.method for v in fake_slack.views] == ["views.open", "views.update", "views.publish"]
    home = fake_slack.home_view("U0ALICE")
    assert home is not None and home.view_id == published["view"]["id"]
    assert blocks_text(home.view["blocks"]) == "Hi"


def test_views_open_without_trigger_and_overlong_title_are_rejected(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)

    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client.views_open(trigger_id="", view=modal())
    with pytest.raises(SlackApiError) as raised:
        client.views_open(trigger_id="1.2.3", view=modal("A title longer than twenty-four"))

    assert "title" in raised.value.response["response_metadata"]["messages"][0]
    assert fake_slack.views == []


def test_duplicate_block_ids_are_invalid_blocks(fake_slack: FakeSlack) -> None:
    block = {"type": "section", "block_id": "same", "text": {"type": "mrkdwn", "text": "x"}}

    with pytest.raises(SlackApiError) as raised:
        client_for(fake_slack).chat_postMessage(channel="C0OPS", text="x", blocks=[block, block])

    assert raised.value.response["error"] == "invalid_blocks"
    assert fake_slack.messages("C0OPS") == []


def test_directory_methods_answer_from_configured_data(fake_slack: FakeSlack) -> None:
    fake_slack.usergroup_members["S0APPROVERS"] = ["U0ALICE", "U0BOB"]
    fake_slack.users["U0ALICE"] = {
        "name": "alice",
        "real_name": "Alice A",
        "profile": {"display_name": "ali"},
    }
    client = client_for(fake_slack)

    assert client.usergroups_users_list(usergroup="S0APPROVERS")["users"] == ["U0ALICE", "U0BOB"]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        client.usergroups_users_list(usergroup="S0NOPE")
    alice = client.users_info(user="U0ALICE")["user"]
    assert (alice["name"], alice["real_name"], alice["profile"]["display_name"]) == (
        "alice",
        "Alice A",
        "ali",
    )
    assert client.users_info(user="U0CAROL")["user"]["name"] == "u0carol"
    assert client.conversations_info(channel="C0OPS")["channel"]["id"] == "C0OPS"
    assert client.api_call("reactions.add", json={"channel": "C0OPS", "name": "eyes"})["ok"] is True
    assert fake_slack.calls_to("usergroups.users.list")[0].args == {"usergroup": "S0APPROVERS"}


def test_wrong_or_missing_token_is_refused_and_recorded(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as raised:
        client_for(fake_slack, token="xoxb-wrong").chat_postMessage(channel="C0OPS", text="x")
    with pytest.raises(SlackApiError, match="not_authed"):
        WebClient(base_url=fake_slack.api_url).chat_postMessage(channel="C0OPS", text="x")

    assert raised.value.response["error"] == "invalid_auth"
    refused = fake_slack.calls_to("chat.postMessage")
    assert [c.error for c in refused] == ["invalid_auth", "not_authed"]
    assert "xoxb-wrong" not in repr(refused[0])  # the token stays out of reprs (and so out of test output)
    assert fake_slack.messages("C0OPS") == []


# -- failure injection --------------------------------------------------------------------------------------


def test_fail_next_500_fails_once(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", status=500)
    client = client_for(fake_slack)

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C0OPS", text="first")
    client.chat_postMessage(channel="C0OPS", text="second")

    assert raised.value.response.status_code == 500
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [500, 200]
    assert [m.text for m in fake_slack.messages("C0OPS")] == ["second"]


def test_fail_next_429_carries_retry_after(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)

    with pytest.raises(SlackApiError) as raised:
        client_for(fake_slack).chat_postMessage(channel="C0OPS", text="x")

    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert raised.value.response.headers["Retry-After"] == "7"


def test_rate_limit_retry_handler_waits_retry_after_then_succeeds(
    fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK sleeps Retry-After (+ jitter); record that wait instead of spending it.
    waits: list[float] = []
    monkeypatch.setattr(builtin_handlers.time, "sleep", waits.append)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=3, times=2)
    client = client_for(fake_slack)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))

    answer = client.chat_postMessage(channel="C0OPS", text="eventually")

    assert answer["ok"] is True
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [429, 429, 200]
    assert len(waits) == 2 and all(3 <= w < 4 for w in waits)
    assert [m.text for m in fake_slack.messages("C0OPS")] == ["eventually"]


def test_fail_next_invalid_auth_is_a_200_with_ok_false(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("views.open", error="invalid_auth")

    with pytest.raises(SlackApiError) as raised:
        client_for(fake_slack).views_open(trigger_id="1.2.3", view=modal())

    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == "invalid_auth"
    assert fake_slack.views == []


# -- response_url -------------------------------------------------------------------------------------------


def test_response_url_ephemeral_and_in_channel(fake_slack: FakeSlack) -> None:
    url = fake_slack.new_response_url(channel="C0OPS", user_id="U0ALICE")
    hook = WebhookClient(url)

    private = hook.send(text="Only Alice sees this", blocks=APPROVAL_BLOCKS[:1])
    public = hook.send(text="Snapshot created", response_type="in_channel")

    assert (private.status_code, private.body) == (200, "ok")
    assert public.status_code == 200
    calls = fake_slack.calls_to("response_url")
    assert [c.args["_url"] for c in calls] == [url, url]
    assert calls[0].args["blocks"] == APPROVAL_BLOCKS[:1]
    [ephemeral] = fake_slack.ephemerals_for("U0ALICE")
    assert (ephemeral.text, ephemeral.source, ephemeral.response_url) == (
        "Only Alice sees this",
        "response_url",
        url,
    )
    assert [m.text for m in fake_slack.messages("C0OPS")] == ["Snapshot created"]


def test_response_url_replace_and_delete_original(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    first = client.chat_postMessage(channel="C0OPS", text="Approve?", blocks=APPROVAL_BLOCKS)["ts"]
    second = client.chat_postMessage(channel="C0OPS", text="Delete me")["ts"]

    replaced = WebhookClient(fake_slack.new_response_url(message_channel="C0OPS", message_ts=first)).send(
        text="Approved by <@U0BOB>", replace_original=True
    )
    deleted = WebhookClient(fake_slack.new_response_url(message_channel="C0OPS", message_ts=second)).send(
        delete_original=True
    )

    assert (replaced.status_code, deleted.status_code) == (200, 200)
    [message] = fake_slack.messages("C0OPS")
    assert (message.ts, message.text, message.blocks, message.updates) == (
        first,
        "Approved by <@U0BOB>",
        [],
        1,
    )
    assert fake_slack.message("C0OPS", second).deleted is True


def test_expired_response_url_answers_404(fake_slack: FakeSlack) -> None:
    url = fake_slack.new_response_url(channel="C0OPS")
    hook = WebhookClient(url)
    assert hook.send(text="before").status_code == 200

    fake_slack.expire_response_url(url)
    after = hook.send(text="after")

    assert (after.status_code, after.body) == (404, "expired_url")
    assert [(c.status, c.error) for c in fake_slack.calls_to("response_url")] == [
        (200, None),
        (404, "expired_url"),
    ]


def test_response_url_expires_after_30_minutes_and_5_uses() -> None:
    now = [1_000.0]
    with FakeSlack(clock=lambda: now[0]) as fake:
        timed = WebhookClient(fake.new_response_url(channel="C0OPS"))
        counted = WebhookClient(fake.new_response_url(channel="C0OPS"))

        statuses = [counted.send(text=f"use {n}").status_code for n in range(6)]
        now[0] += 30 * 60 + 1
        late = timed.send(text="too late")

    assert statuses == [200, 200, 200, 200, 200, 404]
    assert (late.status_code, late.body) == (404, "expired_url")


def test_unknown_response_url_is_404(fake_slack: FakeSlack) -> None:
    with httpx.Client(trust_env=False) as http:
        answer = http.post(f"{fake_slack.base_url}/response/nope", json={"text": "x"})

    assert answer.status_code == 404
    assert fake_slack.calls_to("response_url")[0].error == "invalid_url"


# -- waiting and observing ----------------------------------------------------------------------------------


def test_wait_for_returns_once_calls_arrive_from_another_thread(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    worker = threading.Thread(target=lambda: [client.chat_postMessage(channel="C0OPS", text=f"m{n}") for n in range(3)])
    worker.start()

    calls = fake_slack.wait_for("chat.postMessage", count=3, timeout=10)
    worker.join(timeout=10)

    assert [c.args["text"] for c in calls] == ["m0", "m1", "m2"]


def test_wait_for_filters_and_reports_what_arrived_on_timeout(fake_slack: FakeSlack) -> None:
    client_for(fake_slack).chat_postMessage(channel="C0OPS", text="hello")

    matched = fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["text"] == "hello")
    with pytest.raises(AssertionError) as raised:
        fake_slack.wait_for("chat.update", timeout=0.2)

    assert matched[0].args["text"] == "hello"
    assert "chat.update" in str(raised.value)
    assert "chat.postMessage" in str(raised.value)  # names what did arrive
    assert TOKEN not in str(raised.value)


def test_on_call_observer_sees_every_call_and_cannot_break_slack(fake_slack: FakeSlack) -> None:
    seen: list[SlackCall] = []

    def observer(call: SlackCall) -> None:
        seen.append(call)
        raise RuntimeError("renderer bug")

    fake_slack.on_call = observer
    answer = client_for(fake_slack).chat_postMessage(channel="C0OPS", text="x")

    assert answer["ok"] is True
    assert [c.method for c in seen] == ["chat.postMessage"]


def test_fifty_concurrent_clients_are_all_served(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    barrier = threading.Barrier(50)

    def post(n: int) -> str:
        barrier.wait(timeout=10)
        return str(client.chat_postMessage(channel="C0LOAD", text=f"n{n}")["ts"])

    with ThreadPoolExecutor(max_workers=50) as pool:
        stamps = list(pool.map(post, range(50)))

    assert len(set(stamps)) == 50
    assert sorted(m.text for m in fake_slack.messages("C0LOAD")) == sorted(f"n{n}" for n in range(50))


# -- the WSGI server itself ---------------------------------------------------------------------------------


def test_wsgi_server_serves_quietly_on_loopback_and_stops(capfd: pytest.CaptureFixture[str]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    with start_wsgi_in_thread(app) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        with httpx.Client(trust_env=False) as http:
            answer = http.get(f"{server.url}/ping?q=1")
    assert answer.text == "/ping"
    assert capfd.readouterr().err == ""  # no access log
    with httpx.Client(trust_env=False) as http, pytest.raises(httpx.ConnectError):
        http.get(f"{server.url}/ping", timeout=2)


def test_fake_needs_starting_before_use() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeSlack().api_url


def test_permalink_target_finds_only_this_workspaces_existing_messages(fake_slack: FakeSlack) -> None:
    fake = fake_slack
    client = client_for(fake)
    ts = client.chat_postMessage(channel="C0OPS", text="the card")["ts"]
    link = client.chat_getPermalink(channel="C0OPS", message_ts=ts)["permalink"]
    assert fake.permalink_target(link) == ("C0OPS", ts)
    assert fake.permalink_target(link.replace(fake.team_domain, "elsewhere")) is None
    assert fake.permalink_target(link.replace("C0OPS", "C0OTHER")) is None
    assert fake.permalink_target("https://example.com/") is None
