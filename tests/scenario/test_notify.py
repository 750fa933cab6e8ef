"""Notifications: where lines go, per-channel pacing, and Slack's 429s (one retry policy: bot/slack/retry.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from bot.slack.notify import MAX_LINES_PER_MESSAGE, Notifier
from bot.slack.retry import MAX_RETRY_AFTER, RATE_LIMIT_RETRIES, RateLimitRetry
from devkit.fake_slack import FakeSlack
from tests.app_fixtures import ALICE, BOB, OPS, Harness

NOTIFY = "C0NOTIFY"
APPROVALS = "C0APPROVE"


class FrozenClock:
    """Time stands still while the Notifier "sleeps", so every requested wait is visible and nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))


class RecordingClient:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    def chat_postMessage(self, **kwargs: Any) -> Any:
        self.posts.append(kwargs)
        return type("Response", (), {"data": {"ok": True, "channel": kwargs["channel"], "ts": "1.0"}})()


def plain_client(fake: FakeSlack) -> WebClient:
    """A WebClient without retry handlers: what the Notifier does after the SDK's own retries gave up."""
    return WebClient(token=fake.bot_token, base_url=fake.api_url, timeout=5)


# ---- pacing --------------------------------------------------------------------------------------------------
def test_bursts_to_one_channel_are_paced_one_per_second_and_other_channels_are_not_held_up() -> None:
    clock, client = FrozenClock(), RecordingClient()
    notifier = Notifier(client, None, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    for i in range(4):
        assert notifier.line(f"line {i}", fallback_channel="C0ONE")
    assert clock.sleeps == [1.0, 2.0, 3.0]  # the 2nd, 3rd and 4th message wait for their slot
    assert notifier.line("elsewhere", fallback_channel="C0TWO")
    assert clock.sleeps == [1.0, 2.0, 3.0]  # a quiet channel goes at once
    assert [p["channel"] for p in client.posts] == ["C0ONE"] * 4 + ["C0TWO"]


def test_handed_off_lines_never_hold_their_caller_and_keep_their_order_and_pace() -> None:
    clock, client = FrozenClock(), RecordingClient()
    callers = {threading.current_thread().name}
    slept_in: list[str] = []

    def sleep(seconds: float) -> None:
        slept_in.append(threading.current_thread().name)
        clock.sleep(seconds)

    notifier = Notifier(client, None, clock=clock, sleep=sleep, hand_off=True)  # type: ignore[arg-type]
    for i in range(4):
        assert notifier.line(f"line {i}", fallback_channel="C0ONE")
    assert notifier.wait_idle(10)
    assert clock.sleeps == [1.0, 2.0, 3.0]  # still one per second…
    assert slept_in and not callers & set(slept_in)  # …but the waiting happened on the channel's sender thread
    assert [p["text"] for p in client.posts] == [f"line {i}" for i in range(4)]


def test_many_lines_go_out_as_few_messages_one_line_each() -> None:
    clock, client = FrozenClock(), RecordingClient()
    notifier = Notifier(client, NOTIFY, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    texts = [f"change {i}" for i in range(45)]
    assert notifier.lines(texts, fallback_channel=OPS) == 45
    assert [p["channel"] for p in client.posts] == [NOTIFY] * 3
    assert [len(p["text"].splitlines()) for p in client.posts] == [MAX_LINES_PER_MESSAGE, MAX_LINES_PER_MESSAGE, 5]
    assert "\n".join(p["text"] for p in client.posts).splitlines() == texts


def test_without_a_notification_channel_lines_go_where_the_action_was_or_nowhere() -> None:
    clock, client = FrozenClock(), RecordingClient()
    notifier = Notifier(client, None, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    assert notifier.line("here", fallback_channel=OPS)
    assert not notifier.line("nowhere", fallback_channel=None)
    assert [p["channel"] for p in client.posts] == [OPS]


# ---- Slack failures ------------------------------------------------------------------------------------------
def test_a_429_after_the_sdk_retries_waits_retry_after_and_tries_again(fake_slack: FakeSlack) -> None:
    clock = FrozenClock()
    notifier = Notifier(plain_client(fake_slack), NOTIFY, clock=clock, sleep=clock.sleep)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)
    assert notifier.line("after the storm", fallback_channel=None)
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [429, 200]
    assert 7.0 in clock.sleeps
    assert [m.text for m in fake_slack.messages(NOTIFY)] == ["after the storm"]


def test_a_429_pushes_back_every_later_post_to_that_channel(fake_slack: FakeSlack) -> None:
    clock = FrozenClock()
    notifier = Notifier(plain_client(fake_slack), NOTIFY, clock=clock, sleep=clock.sleep, rate_limit_retries=0)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=30)
    assert not notifier.line("refused", fallback_channel=None)
    assert not clock.sleeps  # no retries allowed here…
    assert notifier.line("next one", fallback_channel=None)
    assert clock.sleeps == [30.0]  # …but the next post still respects Retry-After


def test_persistent_429s_and_other_errors_give_up_without_raising(fake_slack: FakeSlack) -> None:
    clock = FrozenClock()
    notifier = Notifier(plain_client(fake_slack), NOTIFY, clock=clock, sleep=clock.sleep, rate_limit_retries=2)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1, times=5)
    assert not notifier.line("never", fallback_channel=None)
    assert len(fake_slack.calls_to("chat.postMessage")) == 3  # first try + 2 retries

    fake_slack.reset()
    fake_slack.fail_next("chat.postMessage", error="channel_not_found")
    assert not notifier.line("lost", fallback_channel=None)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # not a rate limit: no retry

    unreachable = Notifier(WebClient(token="xoxb-x", base_url="http://127.0.0.1:9/api/", timeout=2), NOTIFY)
    assert not unreachable.line("nobody listens", fallback_channel=None)


def test_the_web_clients_429_handler_waits_retry_after_capped(fake_slack: FakeSlack) -> None:
    sleeps: list[float] = []
    client = WebClient(
        token=fake_slack.bot_token,
        base_url=fake_slack.api_url,
        timeout=5,
        retry_handlers=[RateLimitRetry(sleep=sleeps.append)],
    )
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)
    client.chat_postMessage(channel=NOTIFY, text="after seven seconds")
    # An hour-long Retry-After must not hold a worker thread for an hour.
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=3600)
    client.chat_postMessage(channel=NOTIFY, text="after the cap")
    assert sleeps == [7.0, MAX_RETRY_AFTER]
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [429, 200, 429, 200]


# ---- through the bot -----------------------------------------------------------------------------------------
def fast(h: Harness) -> Harness:
    h.bot.slack.notifier.min_interval = 0.0
    return h


def test_created_and_deleted_lines_go_to_the_notification_channel(make_harness: Callable[..., Harness]) -> None:
    h = fast(make_harness(SNAPSHOT_NOTIFY_CHANNEL=NOTIFY))
    h.run("create 12345 before-update")
    h.driver.block_action("snapshot_delete_confirm", "798", user_id=BOB, channel_id=OPS)
    h.settle()
    lines = [m.text for m in h.channel(NOTIFY)]
    assert any(f"<@{ALICE}> started snapshot `before-update`" in t and "web-server-01" in t for t in lines)
    assert any(f"<@{BOB}> deleted snapshot `weekly-snapshot-2025-01-08`" in t for t in lines)
    # The action's own channel has its announcements, once each.
    assert len([m for m in h.channel(OPS) if "before-update" in m.text]) == 1
    assert len([m for m in h.channel(OPS) if "deleted snapshot" in m.text]) == 1


def test_no_double_post_when_the_notification_channel_is_the_action_channel(
    make_harness: Callable[..., Harness],
) -> None:
    h = fast(make_harness(SNAPSHOT_NOTIFY_CHANNEL=OPS))
    h.run("create 12345 just-once")
    h.driver.block_action("snapshot_delete_confirm", "798", user_id=BOB, channel_id=OPS)
    h.settle()
    assert len([m for m in h.channel(OPS) if "just-once" in m.text]) == 1
    assert len([m for m in h.channel(OPS) if "deleted snapshot" in m.text]) == 1


def test_restore_requested_and_approved_are_notified(make_harness: Callable[..., Harness]) -> None:
    h = fast(make_harness(SNAPSHOT_NOTIFY_CHANNEL=NOTIFY, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS))
    h.run("restore 801", user=ALICE)
    card = [m for m in h.channel(APPROVALS) if "request #" in m.visible_text][-1]
    h.click(card, "Approve", user=BOB)
    h.settle()
    lines = [m.text for m in h.channel(NOTIFY)]
    assert any("requested a restore of `pre-migration-snapshot`" in t for t in lines)
    assert any("was approved" in t and "the restore has started" in t and f"<@{BOB}>" in t for t in lines)


def test_a_persistent_429_is_tried_once_plus_the_policys_retries_not_once_per_layer(
    make_harness: Callable[..., Harness],
) -> None:
    h = fast(make_harness(SNAPSHOT_NOTIFY_CHANNEL=NOTIFY))
    h.slack.fail_next("chat.postMessage", status=429, retry_after=0, times=50)
    assert not h.bot.slack.notifier.line("never delivered", fallback_channel=None)
    # One layer retries (bot/slack/retry.py): not the client's handler inside the Notifier's own loop.
    assert len(h.slack.calls_to("chat.postMessage")) == 1 + RATE_LIMIT_RETRIES
