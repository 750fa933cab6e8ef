"""Slack's encoding of slash-command text (`&amp;`, `<@U…|name>`, `<https://…>`), decoded once at the edge.

Commands go through the driver, which encodes typed text exactly as Slack does; `raw_text=True` sends the
exact sequences Slack's formatting reference describes. What VPS.org received and what the channel was shown
are the assertions, plus the property that decoding undoes Slack's encoding for any typed text.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.slack.incoming_text import decode_command_text
from bot.slack.parsing import Command, parse_command
from devkit.slack_driver import DriverResponse, SlackDriver
from devkit.slack_text import encode_typed_text
from tests.app_fixtures import ALICE, OPS, Harness
from tests.budgets import examples

SECRET = "test-signing-secret"


def created_descriptions(harness: Harness) -> list[str]:
    return [call.json["description"] for call in harness.api_calls("POST", "/api/v1/snapshots/")]


def test_command_text_reaches_vps_decoded_and_the_channel_sees_it_escaped_once(harness: Harness) -> None:
    harness.run("create 12345 x Before <b> & after")

    assert created_descriptions(harness) == ["Before <b> & after"]
    announcement = harness.channel()[-1]
    shown = json.dumps(announcement.blocks) + announcement.text
    assert "Before &lt;b&gt; &amp; after" in shown  # escaped once: Slack shows "Before <b> & after"
    assert "&amp;lt;" not in shown and "&amp;amp;" not in shown and "&amp;gt;" not in shown
    record = next(r for r in harness.audit() if r.action == "create.requested")
    assert record.details["description"] == "Before <b> & after"


def test_description_length_is_counted_as_typed_not_as_sent(harness: Harness) -> None:
    unit = "a<b>&c @bob #ops "  # 17 characters typed, 40 once Slack has encoded it
    typed = (unit * 30)[:490] + "x"
    assert len(typed) == 491 and len(harness.driver.encode_text(typed)) > 1000
    harness.run("create 12345 long-one " + typed)
    assert created_descriptions(harness) == [typed]

    # All `&`: five times longer on the wire than the command-length limit allows, yet within limits typed.
    harness.run("create 12345 many-amps " + "&" * 500)
    assert created_descriptions(harness)[-1] == "&" * 500

    harness.run("create 12345 too-long " + "&" * 501)
    assert "too long: 501 characters, at most 500" in harness.last_ephemeral().visible_text
    assert len(created_descriptions(harness)) == 2


def test_slack_sequences_become_what_the_user_typed(harness: Harness) -> None:
    # Exactly what Slack sends (should_escape: true), per its formatting reference.
    sent = (
        "create 12345 seq <@U0BOB|bob> <@U0CAROL> <#C0OPS|ops> <#C0DEV> <!subteam^S0SRE|@sre> <!subteam^S0DBA> "
        "<!here> <!channel> <!everyone> <!date^1392734382^{date}|Feb 18, 2014> <https://a.example/x?y=1&amp;z=2> "
        "<http://b.example|b.example> <mailto:c@d.example|c@d.example> <https://evil.example|https://good.example> "
        "&amp;lt;kept&amp;gt; &amp;amp;"
    )
    response = harness.driver.command(sent, user_id=ALICE, user_name="alice", channel_id=OPS, raw_text=True)
    assert response.status == 200
    harness.settle()
    assert created_descriptions(harness) == [
        "@bob @U0CAROL #ops #C0DEV @sre @S0DBA @here @channel @everyone Feb 18, 2014 https://a.example/x?y=1&z=2 "
        "b.example c@d.example https://good.example (https://evil.example) &lt;kept&gt; &amp;"
    ]
    announcement = harness.channel()[-1]
    assert "<!here>" not in json.dumps(announcement.blocks)  # nothing decoded pings anyone when shown again


def test_command_and_form_give_the_same_description(harness: Harness) -> None:
    typed = "Ask @bob in #ops & <b> first, @here: https://wiki.example/a?b=1&c=2 or ops@corp.example"
    harness.run("create 12345 by-command " + typed)
    submitted = harness.driver.view_submission(
        "create_snapshot",
        {
            "server": {"value": {"type": "plain_text_input", "value": "12346"}},
            "name": {"value": {"type": "plain_text_input", "value": "by-form"}},
            "description": {"value": {"type": "plain_text_input", "value": typed}},  # forms send plain text
        },
        user_id=ALICE,
        private_metadata=json.dumps({"channel_id": OPS}),
    )
    assert submitted.status == 200
    harness.settle()
    assert created_descriptions(harness) == [typed, typed]


def test_audit_user_filter_takes_a_typed_mention(harness: Harness) -> None:
    harness.run("create 12345 alices")
    harness.run("list", user="U0BOB")
    harness.run("audit user:@alice")  # Slack sends user:<@U0ALICE|alice>
    text = harness.last_ephemeral().visible_text
    assert "create.succeeded" in text and "<@U0BOB>" not in text
    refused = harness.command("audit user:@nobody")  # no such user: Slack leaves it as text
    assert "`user:` takes a mention" in refused.json()["text"]


# ---- the driver encodes like Slack -------------------------------------------------------------------------
class _Directory:
    users = {"bob": "U0BOB", "alice": "U0ALICE"}
    channels = {"ops": "C0OPS"}
    groups = {"sre": "S0SRE"}

    def user_id(self, name: str) -> str | None:
        return self.users.get(name.lower())

    def channel_id(self, name: str) -> str | None:
        return self.channels.get(name.lower())

    def usergroup_id(self, handle: str) -> str | None:
        return self.groups.get(handle.lower())


def sent_text(typed: str) -> str:
    captured: list[bytes] = []

    def capture(path: str, headers: dict[str, str], body: bytes, /) -> DriverResponse:
        captured.append(body)
        return DriverResponse(status=200, body="")

    SlackDriver(capture, SECRET, directory=_Directory()).command(typed, user_id=ALICE)
    return parse_qs(captured[0].decode())["text"][0]


def test_driver_sends_command_text_the_way_slack_does() -> None:
    assert sent_text("create 12345 x Before <b> & after") == "create 12345 x Before &lt;b&gt; &amp; after"
    assert sent_text("ask @bob, @sre and @nobody in #ops or #798 @here") == (
        "ask <@U0BOB|bob>, <!subteam^S0SRE|@sre> and @nobody in <#C0OPS|ops> or #798 <!here>"
    )
    assert sent_text("see https://x.example/a?b=1&c=2. mail me@corp.example") == (
        "see <https://x.example/a?b=1&amp;c=2>. mail <mailto:me@corp.example|me@corp.example>"
    )
    assert sent_text("&amp; is typed, <@U0BOB> too") == "&amp;amp; is typed, &lt;@U0BOB&gt; too"


TYPED = st.lists(
    st.sampled_from([*"ab@#&<>|:/.-_ !?)\né", "bob", "ops", "sre", "here", "https://", "&amp;", "mailto:"]),
    max_size=25,
).map("".join)


@given(TYPED)
@settings(max_examples=examples(400), deadline=None)
def test_decoding_undoes_slacks_encoding_of_any_typed_text(typed: str) -> None:
    sent = encode_typed_text(typed, _Directory())
    assert decode_command_text(sent) == typed
    assert "&amp;lt;" not in decode_command_text(encode_typed_text("<", None))


@given(TYPED)
@settings(max_examples=examples(200), deadline=None)
def test_the_parser_sees_the_typed_description(typed: str) -> None:
    command = parse_command(encode_typed_text("create 12345 x " + typed, _Directory()))
    assert isinstance(command, Command)
    assert command.args.get("description", "") == typed.strip() or len(typed.split()) == 0


def test_a_usage_error_quotes_the_typed_text_escaped_once(harness: Harness) -> None:
    for typed, quoted in {
        "delete <!here>": "`&lt;!here&gt;`",  # typed literally: Slack sent &lt;!here&gt;
        "delete @here": "`@here`",  # a real special mention: Slack sent <!here>
        "delete a&b": "`a&amp;b`",
    }.items():
        text = harness.command(typed).json()["text"]
        assert quoted in text, (typed, text)
        assert "<!here>" not in text and "&amp;lt;" not in text and "&amp;amp;" not in text, (typed, text)
        assert "&lt;snapshot_id&gt;" in text  # the usage line, escaped the same way
    harness.settle()
    assert harness.mutating_calls() == []
