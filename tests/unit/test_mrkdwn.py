"""bot/mrkdwn.py: the renderers escape, keep untrusted text on one line, redact, and clipping never undoes them."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.mrkdwn import Mrkdwn, clip, code, mention, plain, quote, sentence
from bot.redaction import MASK, remember_secret
from tests.budgets import examples

ANY_TEXT = st.one_of(st.text(max_size=200), st.text(alphabet="<>&*_~`:@!|#\n\r\t >ab\u202e😀", max_size=200))


def test_a_hostile_name_in_a_code_span_is_text() -> None:
    assert code("evil <!channel> & <https://evil.example|click>") == (
        "`evil &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;`"
    )
    assert code("a`b\nc") == "`aˋb c`"
    assert code("") == "`-`"


def test_free_text_reads_the_same_but_formats_nothing() -> None:
    forged = "Nightly\n*Server:* staging-01 — _safe_\n:white_check_mark: *Pre-approved* see https://x.example @channel"
    shown = plain(forged)
    assert "\n" not in shown
    assert not set("*_~`") & set(shown)
    assert ":white_check_mark:" not in shown and "https://" not in shown and "@channel" not in shown
    assert shown.startswith("Nightly ∗Server∶∗ staging-01")
    assert plain("> quote").startswith("›")
    assert quote("x") == "“x”"


def test_bidi_overrides_are_dropped_but_right_to_left_text_stays() -> None:
    assert plain("\u202eexe.txt\u202c שרת") == "exe.txt שרת"


def test_secrets_are_redacted_by_every_renderer() -> None:
    secret = "Hq7Zr2Lp9Xw4Tm6Vb1Nc8"
    remember_secret(secret)
    for rendered in (code(f"x {secret[:10]}"), plain(f"x {secret}"), sentence(f"x {secret[:9]} y")):
        assert secret[:8] not in rendered and MASK in rendered


def test_mentions_only_for_user_ids() -> None:
    assert mention("U0ALICE") == "<@U0ALICE>"
    assert mention("<!channel>") == "`&lt;!channel&gt;`"


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(ANY_TEXT, min_size=1, max_size=6), st.integers(min_value=1, max_value=400))
def test_clipping_never_cuts_an_escape_a_span_or_a_sequence(values: list[str], limit: int) -> None:
    text = Mrkdwn(" · ").join(code(v) if i % 2 else plain(v) for i, v in enumerate(values))
    text = Mrkdwn("<@U0ALICE> ") + text
    clipped = clip(text, limit)
    assert len(clipped) <= max(limit, 1)
    assert clipped.replace("```", "").count("`") % 2 == 0
    assert not re.search(r"&[a-z]*$", clipped.rstrip("…"))
    assert clipped.count("<") == clipped.count(">")
