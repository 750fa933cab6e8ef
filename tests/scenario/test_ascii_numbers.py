"""Every number a person types is ASCII digits (issue 24 §4): a Bengali ৪ (which reads like an 8), Arabic-Indic
٠٢:٣٠ or fullwidth ６ gets the usual clear answer and changes nothing.

Typed through the real app as Slack sends it (the driver encodes the text like Slack and form-encodes it as UTF-8).
"""

from __future__ import annotations

import pytest

from tests.app_fixtures import ALICE, OPS, Harness

TYPED = {
    "every ৪h (Bengali)": "schedule 12347 every ৪h keep 2",
    "daily ٠٢:٣٠ (Arabic-Indic)": "schedule 12347 daily ٠٢:٣٠ keep 2",
    "every ６h (fullwidth)": "schedule 12347 every ６h keep 2",
    "weekly at ０３:００": "schedule 12347 weekly sun ０３:００ keep 2",
    "daily 0২:30 (one digit)": "schedule 12347 daily 0২:30 keep 2",
    "cron with ৫": "schedule 12347 cron ৫ 2 * * * keep 2",
    "keep ２": "schedule 12347 daily 02:30 keep ２",
    "server id ১২৩৪৭": "schedule ১২৩৪৭ daily 02:30 keep 2",
    "reschedule every ৪h": "reschedule 1 every ৪h keep 2",
    "restore ٨٠١": "restore ٨٠١",
    "delete ８０１": "delete ８０１",
    "list ১২৩৪৫": "list ১২৩৪৫",
    "create on １２３４５": "create １２３４５ before-update",
    "audit limit:৫": "audit limit:৫",
}


@pytest.mark.parametrize("typed", list(TYPED.values()), ids=list(TYPED))
def test_non_ascii_digits_get_a_clear_answer_and_change_nothing(harness: Harness, typed: str) -> None:
    harness.run("schedule 12347 daily 01:00 keep 1")  # schedule #1, for `reschedule 1`
    before_audit = len(harness.audit())
    before_calls = len(harness.mutating_calls())
    posted = len(harness.channel(OPS))

    response = harness.run(typed)

    # A usage mistake is answered in the ack itself; a use case's refusal comes as an ephemeral message.
    answer = response.body + " ".join(e.visible_text for e in harness.ephemerals(ALICE))
    assert "must be a whole number" in answer or "got" in answer or "I don't understand" in answer, answer
    new_actions = harness.actions()[before_audit:]
    assert all(action.startswith("refused.") for action in new_actions), new_actions  # a refusal, recorded
    assert len(harness.mutating_calls()) == before_calls
    assert len(harness.channel(OPS)) == posted  # no schedule card, no request card


def test_the_same_in_ascii_is_accepted(harness: Harness) -> None:
    harness.run("schedule 12347 every 4h keep 2")
    assert "Schedule #1" in harness.channel(OPS)[-1].visible_text
