"""bot/slack/wording.py: use-case `Text` becomes safe mrkdwn in one place, hostile values included."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.mrkdwn import Mrkdwn
from bot.slack.wording import SLASH_COMMAND, render
from bot.usecases.errors import doing_with, explain_vps_error
from bot.usecases.wording import (
    RECORD_COMMAND,
    Kind,
    Part,
    Text,
    alarm,
    channel_link,
    code,
    command,
    emphasis,
    mention,
    plain,
    quote,
    sentence,
)
from bot.vps.errors import Unavailable

HOSTILE = "evil <!here> & <https://evil.example|click> *bold* `tick` @here :rotating_light: _x_ ~y~"
HOSTILE_TEXT = st.one_of(st.text(max_size=300), st.text(alphabet="<>&*_~`:@!|#\n\r\t >ab\u202e😀", max_size=300))


def test_a_hostile_name_is_a_code_span_that_formats_and_pings_nothing() -> None:
    shown = render(Text("Server {} is gone.").format(code(HOSTILE)))
    assert isinstance(shown, Mrkdwn)
    assert shown.startswith("Server `evil &lt;!here&gt; &amp; &lt;https://evil.example|click&gt; *bold* ˋtickˋ")
    assert shown.endswith("` is gone.")
    assert shown.count("`") == 2  # the name's own backticks cannot close the span
    assert "<" not in shown and "&amp;" in shown


def test_outside_words_read_the_same_but_format_nothing() -> None:
    shown = render(Text("VPS.org said: {}").format(quote(HOSTILE)))
    assert not set("*_~`<") & set(shown)
    assert "@here" not in shown and ":rotating_light:" not in shown and "https://" not in shown
    assert shown.startswith("VPS.org said: “evil &lt;!here&gt; &amp;")


def test_very_long_names_and_words_are_clipped_to_their_limit() -> None:
    long = "n" * 5000
    assert render(code(long, 64)) == Mrkdwn("`" + "n" * 63 + "…`")
    assert len(render(plain(long, 300))) == 300
    assert str(code(long, 64)) == "`" + "n" * 63 + "…`"  # the record form is clipped the same way


def test_the_bots_own_parts_keep_their_look() -> None:
    text = Text("{} Restore of {} by {} in {}: {} — try {}.").format(
        alarm(), code("db-1"), mention("U0ALICE"), channel_link("C0OPS"), emphasis("unknown"), command("list")
    )
    assert render(text) == (
        ":rotating_light: Restore of `db-1` by <@U0ALICE> in <#C0OPS>: *unknown* — try `/snapshot list`."
    )
    assert SLASH_COMMAND == RECORD_COMMAND == "/snapshot"  # stored hints name the command the app registers


def test_a_forged_user_or_channel_id_is_shown_as_a_name() -> None:
    assert render(mention("<!channel>")) == "`&lt;!channel&gt;`"
    assert render(channel_link("C1|x>")) == "`C1|x&gt;`"


def test_a_command_hint_escapes_its_placeholders() -> None:
    hint = command("restore", "<snapshot_id>", "<reason…>")
    assert render(hint) == "`/snapshot restore &lt;snapshot_id&gt; &lt;reason…&gt;`"
    assert str(hint) == "/snapshot restore <snapshot_id> <reason…>"  # the record form: bare, as typed


def test_a_sentence_the_bot_wrote_is_escaped_not_trusted() -> None:
    assert render(sentence("a <b> & c")) == "a &lt;b&gt; &amp; c"


def test_the_outcome_unknown_wording_is_unchanged() -> None:
    error = Unavailable("x", status_code=504, outcome_unknown=True)
    failure = explain_vps_error(error, doing_with("creating snapshot", "nightly"))
    assert render(failure.message) == (
        "VPS.org did not answer while creating snapshot `nightly` (HTTP 504), so the outcome is *unknown* — "
        "check `/snapshot list` before retrying."
    )
    assert str(failure) == (
        "VPS.org did not answer while creating snapshot `nightly` (HTTP 504), so the outcome is *unknown* — "
        "check /snapshot list before retrying."
    )


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_of_part_has_a_look(kind: Kind) -> None:
    part = Part(kind, "x", args=("list",), inner=Text("y"))
    assert isinstance(render(Text(_parts=(part,))), Mrkdwn)


@pytest.mark.parametrize("combine", ["add", "radd", "format", "join", "format-spec", "not-a-str"])
def test_an_untagged_string_cannot_enter_a_text(combine: str) -> None:
    raw = "<!channel>"
    with pytest.raises(TypeError):
        if combine == "add":
            _ = Text("a ") + raw  # type: ignore[operator]
        elif combine == "radd":
            _ = raw + Text(" b")  # type: ignore[operator]
        elif combine == "format":
            Text("server {}").format(raw)
        elif combine == "join":
            Text(", ").join([raw])  # type: ignore[list-item]
        elif combine == "format-spec":
            Text("{:>10}").format(code("x"))
        else:
            Text(42)  # type: ignore[arg-type]


def test_format_join_and_equality() -> None:
    joined = Text(", ").join([code("a"), code("b")])
    assert str(joined) == "`a`, `b`"
    assert Text("{} of {:,}").format(3, 12000) == Text("3 of 12,000")
    assert Text("{name} and {0}").format(code("x"), name=code("y")) == Text("{} and {}").format(code("y"), code("x"))
    assert not Text() and Text("a") and code("")


@given(HOSTILE_TEXT, HOSTILE_TEXT, HOSTILE_TEXT)
def test_no_untrusted_value_can_ping_link_or_break_a_line(name: str, words: str, user: str) -> None:
    shown = render(
        Text("{} said {} to {} ({})").format(code(name, 80), plain(words, 300), mention(user), quote(words, 50))
    )
    assert "\n" not in shown and "\r" not in shown
    allowed = {"<@" + user + ">"} if shown.count("<") == 1 else set()
    for start in (i for i, ch in enumerate(shown) if ch == "<"):
        assert any(shown.startswith(ok, start) for ok in allowed), shown
    assert "<!" not in shown
