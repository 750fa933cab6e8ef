"""Property-based tests: arbitrary text at the command parser and at `/snapshot`, arbitrary JSON at the
interaction endpoint. Nothing escapes, nothing answers 5xx, and nothing reaches VPS.org unless it should."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.parsing import Command, UsageError, parse_command
from bot.usecases.errors import InvalidInput
from bot.usecases.validation import parse_id
from devkit.slack_driver import SlackDriver, wsgi_sender
from tests.app_fixtures import SIGNING_SECRET, Harness
from tests.budgets import examples

WORDS = ["help", "?", "list", "ls", "create", "delete", "restore", "pending", "audit", "LIST", "Create"]
ID_ARGS = ("server_id", "snapshot_id")
FUZZ = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text that looks like a command often enough to reach every branch of the parser.
command_text = st.one_of(
    st.text(),
    st.builds(
        lambda word, args: f"{word} {' '.join(args)}",
        st.sampled_from(WORDS),
        st.lists(
            st.one_of(
                st.text(max_size=12),
                st.integers(min_value=-(2**64), max_value=2**64).map(str),
                st.sampled_from(["12345", "#801", "798", "٣", "²", "0", "server:1", "user:@U0X", "limit:5"]),
            ),
            max_size=4,
        ),
    ),
    st.builds(lambda n: "create 12345 " + "x" * n, st.integers(min_value=0, max_value=2500)),
)


@given(command_text)
@settings(max_examples=examples(500), deadline=None)
def test_parser_gives_a_command_or_a_usage_error_and_valid_ids(text: str) -> None:
    try:
        command = parse_command(text)
    except UsageError as error:
        assert str(error)
        return
    assert isinstance(command, Command)
    for key in ID_ARGS:
        if key in command.args:
            value = int(command.args[key].lstrip("#"))
            assert 0 < value <= 2**53 and command.args[key].lstrip("#").isascii()


def in_process_driver(harness: Harness) -> SlackDriver:
    """Signed requests straight into the bot's WSGI app: no sockets, so hundreds of examples stay fast."""
    respond_to = harness.slack.new_response_url
    return SlackDriver(wsgi_sender(harness.bot.wsgi), SIGNING_SECRET, response_url_factory=respond_to)


def expected_create(text: str, harness: Harness) -> str | None:
    """The snapshot name a `/snapshot <text>` may legitimately create, or None if it must not create any."""
    try:
        command = parse_command(text)
    except UsageError:
        return None
    if command.name != "create" or not command.args:
        return None
    args = command.args
    try:
        parse_id(args["server_id"], "server id")  # as the listener does, before the use case
        harness.bot.core.snapshots.validate_create(args["name"], args["description"])
    except InvalidInput:
        return None
    return args["name"]


def test_any_command_text_answers_200_and_only_valid_creates_reach_the_api(harness: Harness) -> None:
    driver = in_process_driver(harness)

    @FUZZ
    @given(text=st.one_of(command_text, st.builds(lambda n: f"create 12347 {n}", st.text(max_size=70))))
    def run(text: str) -> None:
        before = len(harness.sim.requests)
        response = driver.command(text, user_id="U0FUZZ", channel_id="C0OPS")
        assert response.status == 200, (text, response.status, response.body)
        assert "Traceback" not in response.body
        harness.settle()
        mutations = [r for r in harness.sim.requests[before:] if r.method in ("POST", "DELETE")]
        allowed = expected_create(driver.encode_text(text), harness)  # the parser sees what Slack sends
        if allowed is None:
            assert mutations == [], (text, mutations)
        else:
            assert [(r.method, r.path, r.json["name"]) for r in mutations] in (
                [],  # e.g. the server is at its snapshot quota, or does not exist
                [("POST", "/api/v1/snapshots/", allowed)],
            ), (text, mutations)

    run()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
ACTION_IDS = [
    "snapshot_delete_confirm",
    "snapshot_delete",
    "snapshot_restore",
    "approval_approve",
    "approval_reject",
    "approval_cancel",
    "snapshot_list_more",
    "audit_more",
    "snapshot_create_open",
    "",
]
values = st.text(max_size=30) | st.sampled_from(["798", "801", "1", "0", "-5", "9" * 30, "{}", '{"b": 1}'])
META_KEYS = st.sampled_from(["request_id", "channel", "channel_id"])
BLOCK_IDS = st.sampled_from(["server", "name", "description", "reason"])
users = st.fixed_dictionaries({"id": st.sampled_from(["U0FUZZ", "W0FUZZ", "U0ADMIN"]), "team_id": st.just("T0SNAPBOT")})
block_actions = st.fixed_dictionaries(
    {
        "type": st.just("block_actions"),
        "user": users,
        "team": st.just({"id": "T0SNAPBOT"}),
        "api_app_id": st.just("A0SNAPBOT"),
        "channel": st.just({"id": "C0OPS"}),
        "container": st.just({"type": "message", "channel_id": "C0OPS"}),
        "trigger_id": st.text(max_size=10),
        "actions": st.lists(
            st.fixed_dictionaries({"action_id": st.sampled_from(ACTION_IDS), "value": values}), min_size=1, max_size=2
        ),
    }
)
view_submission = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["view_submission", "view_closed"]),
        "user": users,
        "team": st.just({"id": "T0SNAPBOT"}),
        "view": st.fixed_dictionaries(
            {
                "type": st.just("modal"),
                "callback_id": st.sampled_from(["create_snapshot", "reject_request", "zzz"]),
                "private_metadata": st.text(max_size=30) | st.builds(json.dumps, st.dictionaries(META_KEYS, values)),
                "state": st.fixed_dictionaries({"values": st.dictionaries(BLOCK_IDS, json_values)}),
            }
        ),
    }
)


def _mutate(payload: dict[str, Any], key: str | None, junk: Any) -> Any:
    """A Slack-shaped payload with one field replaced by arbitrary JSON (or removed), or left as it is."""
    if key is None:
        return payload
    changed = dict(payload)
    if junk is None:
        changed.pop(key, None)
    else:
        changed[key] = junk
    return changed


# Mostly well-formed, so the fuzz gets past the shape check into the listeners and use cases.
slackish = st.builds(
    _mutate,
    block_actions | view_submission,
    st.sampled_from([None, None, "type", "user", "team", "actions", "view", "channel", "container", "trigger_id"]),
    json_values,
)


def test_any_json_payload_is_answered_below_500_and_changes_nothing(
    make_harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    # Access control on: the fuzzed users have no role, except U0ADMIN, who may do anything one person may; deletes
    # need a second person too, so no single payload from anyone may change anything at VPS.org (an admin's
    # well-formed "confirm delete" click would, and rightly: that is not what this test looks for). A change could
    # only come from a check being skipped.
    harness = make_harness(SNAPSHOT_ADMINS="U0ADMIN", APPROVAL_REQUIRED_FOR="restore,delete")
    driver = in_process_driver(harness)

    @FUZZ
    @given(payload=slackish | json_values)
    def run(payload: Any) -> None:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        response = driver.send_raw(body, {"Content-Type": "application/x-www-form-urlencoded", **driver.sign(body)})
        assert response.status < 500, (payload, response.status, response.body)
        assert "Traceback" not in response.body

    run()
    harness.settle()
    assert [(r.method, r.path) for r in harness.sim.requests if r.method in ("POST", "DELETE")] == []
    # Odd input is refused on purpose, never by an exception caught at the last moment.
    crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert crashes == []
