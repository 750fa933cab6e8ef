"""Slack on a bad day: chat.postMessage / chat.update answering 500, 429 or invalid_auth, an expired response_url.

Whatever Slack does, the operation's own result is not lost: it happened once, it is in the audit trail, and it
shows up where people look (`/snapshot pending`, App Home), and the bot keeps answering.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devkit.fake_slack import blocks_text
from tests.app_fixtures import ALICE, BOB, OPS, Harness

APPROVALS = "C0APPROVE"


@pytest.fixture
def h(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)


def home_text(h: Harness, user: str) -> str:
    h.driver.app_home_opened(user)
    h.settle()
    view = h.slack.home_view(user)
    assert view is not None, "no Home tab published"
    return blocks_text(view.view.get("blocks", []))


@pytest.mark.parametrize(("status", "error"), [(500, None), (200, "invalid_auth")], ids=["http-500", "invalid_auth"])
def test_create_announcement_fails_but_the_user_still_gets_the_result(
    h: Harness, status: int, error: str | None
) -> None:
    h.slack.fail_next("chat.postMessage", status=status, error=error)
    h.run("create 12345 quiet-slack")
    assert [c.ok for c in h.slack.calls_to("chat.postMessage")] == [False]
    assert h.channel(OPS) == []
    # The announcement comes to the user privately instead.
    assert "started snapshot `quiet-slack`" in h.last_ephemeral().visible_text
    assert h.actions() == ["create.requested", "create.succeeded"]
    assert len([r for r in h.sim.requests if r.method == "POST"]) == 1
    # …and it is on the user's Home tab: being followed, and in their recent actions.
    text = home_text(h, ALICE)
    assert "quiet-slack" in text and "create.succeeded" in text


def test_rate_limited_post_is_sent_after_retry_after_exactly_once(h: Harness) -> None:
    h.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    h.run("create 12345 patient")
    calls = h.slack.calls_to("chat.postMessage")
    assert [c.ok for c in calls] == [False, True]
    [message] = h.channel(OPS)
    assert "started snapshot `patient`" in message.visible_text
    assert h.actions() == ["create.requested", "create.succeeded"]


def test_approval_card_that_cannot_be_posted_cancels_the_request(h: Harness) -> None:
    h.slack.fail_next("chat.postMessage", status=200, error="invalid_auth", times=5)
    h.run("restore 801")
    told = h.last_ephemeral().visible_text
    assert "request #1 was *cancelled*" in told and "Slack answered `invalid_auth` for <#C0APPROVE>" in told, told
    assert h.channel(APPROVALS) == [] and h.channel(OPS) == []
    assert h.actions() == ["restore.requested", "restore.cancelled"]
    h.run("pending", user=BOB)
    assert "No open requests" in h.last_ephemeral(BOB).visible_text
    assert "Nothing is waiting" in home_text(h, BOB)


@pytest.mark.parametrize(
    ("status", "error"), [(500, None), (429, None), (200, "invalid_auth")], ids=["http-500", "http-429", "invalid_auth"]
)
def test_card_update_failing_loses_nothing_of_the_approved_restore(h: Harness, status: int, error: str | None) -> None:
    h.run("restore 801")
    c = h.card()
    # Enough failures to outlast the client's own 429 retries; `Retry-After: 0` so they are not slept through.
    h.slack.fail_next("chat.update", status=status, error=error, times=5, retry_after=0 if status == 429 else None)
    h.click(c, "Approve", user=BOB)
    h.settle()
    assert h.slack.calls_to("chat.update") and not any(call.ok for call in h.slack.calls_to("chat.update"))
    assert h.slack.message(APPROVALS, c.ts).updates == 0  # the card is stale…
    # …but the restore ran once, is audited, the requester was told in the thread and it is being followed.
    assert len(h.restore_posts()) == 1
    actions = h.actions()
    assert actions.index("restore.executing") < actions.index("restore.executed")
    thread = [m for m in h.channel(APPROVALS) if m.thread_ts == c.ts]
    assert thread and "the restore has started" in thread[-1].text
    assert "restore of `web-server-01`" in home_text(h, ALICE)
    # The stale card's button cannot make it happen twice.
    h.click(c, "Approve", user=BOB)
    h.settle()
    assert "already approved and carried out" in h.last_ephemeral(BOB).visible_text
    assert len(h.restore_posts()) == 1


def test_expired_response_url_falls_back_to_an_ephemeral_message(h: Harness) -> None:
    h.slack.fail_next("response_url", status=404, error="expired_url")
    h.run("list 12345")
    h.slack.fail_next("response_url", status=404, error="expired_url")
    h.run("create 99999 nowhere")  # a refusal must reach the user just the same
    assert [c.error for c in h.slack.calls_to("response_url")] == ["expired_url", "expired_url"]
    fallbacks = [c for c in h.slack.calls_to("chat.postEphemeral") if c.ok]
    assert len(fallbacks) == 2, "no chat.postEphemeral fallback"
    seen = [e.visible_text for e in h.ephemerals(ALICE)]
    assert "web-server-01" in seen[0]
    assert "Server 99999 does not exist" in seen[1]
    assert h.bot.core.audit.verify().ok


def test_slack_down_for_everything_still_records_everything(h: Harness) -> None:
    for method in ("chat.postMessage", "chat.postEphemeral", "chat.update", "response_url"):
        h.slack.fail_next(method, status=500, times=20)
    h.run("create 12345 into-the-void")
    h.run("restore 801")
    # A restore request whose card could not be posted is cancelled, not left for nobody to approve.
    assert h.actions() == ["create.requested", "create.succeeded", "restore.requested", "restore.cancelled"]
    assert "could not be posted" in h.audit(action="restore.cancelled")[0].details["reason"]
    assert len([r for r in h.sim.requests if r.method == "POST"]) == 1
    assert h.bot.core.audit.open_intents() == []
    # Slack is back: the results are there to be found.
    h.slack.reset()
    h.run("pending", user=BOB)
    assert "No open requests" in h.last_ephemeral(BOB).visible_text
    assert "into-the-void" in home_text(h, ALICE)
