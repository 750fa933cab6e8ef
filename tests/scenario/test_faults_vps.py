"""VPS.org on a bad day: slow, 5xx, 429, dropped connections, HTML instead of JSON, a rotated token.

For each fault the user gets an honest answer (an unknown outcome is called unknown, never retried blindly), the
audit has the intent and its outcome, the simulator saw the mutating call exactly once, and the bot keeps
answering afterwards. Intent-before-call with plain 500s is proven in test_audit_trail.py and not repeated here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devkit.simulator import API_PREFIX, VpsSimulator, make_server
from storage.audit import AuditRecord
from tests.app_fixtures import ALICE, BOB, OPS, Harness
from tests.waiting import eventually

APPROVALS = "C0APPROVE"
UNKNOWN_WORDS = "the outcome is *unknown* — check `/snapshot list` before retrying"


class HoldingSimulator:
    """The simulator on loopback HTTP, able to hold matching requests until released (a slow VPS.org).

    `held` is set once a held request has arrived, so a test can act "while VPS.org is sitting on the call";
    a held request goes on to the simulator when released (or after `max_hold` seconds), so the change is
    applied late, as a slow API would apply it.
    """

    def __init__(self, sim: VpsSimulator, max_hold: float = 20.0) -> None:
        self.sim = sim
        self.max_hold = max_hold
        self.held = threading.Event()
        self._release = threading.Event()
        self._match: Callable[[str, str], bool] | None = None
        self._server = make_server(sim)
        self._server.set_app(self._app)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}{API_PREFIX}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def hold(self, method: str, path_suffix: str = "") -> None:
        """Hold the next requests with `method` whose path ends with `path_suffix`."""
        self.held.clear()
        self._release.clear()
        self._match = lambda m, p: m == method and p.endswith(path_suffix)

    def release(self) -> None:
        self._match = None
        self._release.set()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        match = self._match
        if match is not None and match(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")):
            self.held.set()
            self._release.wait(self.max_hold)
        return self.sim(environ, start_response)

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def slow_vps() -> Iterator[HoldingSimulator]:
    holder = HoldingSimulator(VpsSimulator(completion_delay=0))
    yield holder
    holder.stop()


def operations(h: Harness) -> dict[str, list[tuple[str, str]]]:
    """Audit rows grouped by operation id: {operation_id: [(action, outcome), …]} oldest first."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for record in reversed(h.audit()):
        if record.operation_id:
            grouped.setdefault(record.operation_id, []).append((record.action, record.outcome))
    return grouped


def only_operation(h: Harness) -> list[tuple[str, str]]:
    ops = operations(h)
    assert len(ops) == 1, ops
    return next(iter(ops.values()))


def still_answers(h: Harness, user: str = ALICE) -> None:
    """The process is up and serving: a plain list works after the fault."""
    h.sim.faults.clear()
    h.run("list 12345", user=user)
    assert "web-server-01" in h.last_ephemeral(user).visible_text


def posts(h: Harness, suffix: str = "snapshots/") -> list[Any]:
    return [r for r in h.sim.requests if r.method == "POST" and r.path.endswith(suffix)]


def no_token_anywhere(h: Harness, records: list[AuditRecord], caplog: pytest.LogCaptureFixture) -> None:
    token = h.sim.token
    for record in records:
        assert token not in repr(record.details)
    assert token not in caplog.text


# ---- slow: beyond the client timeout ---------------------------------------------------------------------------
def test_create_slower_than_the_timeout_is_reported_unknown_and_never_retried(
    make_harness: Callable[..., Harness], slow_vps: HoldingSimulator
) -> None:
    h = make_harness(
        sim=slow_vps.sim,
        vps_transport=httpx.HTTPTransport(),
        VPS_API_URL=slow_vps.url,
        VPS_TIMEOUT_SECONDS="0.5",
    )
    slow_vps.hold("POST", "/snapshots/")
    h.run("create 12345 slow-one")
    assert slow_vps.held.is_set()
    assert UNKNOWN_WORDS in h.last_ephemeral().visible_text
    assert only_operation(h) == [("create.requested", "intent"), ("create.failed", "unknown")]
    failed = h.audit(action="create.failed")[0]
    assert failed.details["outcome_unknown"] is True and failed.details["error"] == "Unavailable"

    # VPS.org finishes the call late: the snapshot exists, which is why "unknown" (not "failed") was right.
    slow_vps.release()
    # `release` only lets the held request go on: wait (with a deadline) until VPS.org has answered it.
    eventually(lambda: posts(h), "VPS.org to finish the held create")
    still_answers(h)
    assert "slow-one" in h.last_ephemeral().visible_text
    assert len(posts(h)) == 1
    assert h.bot.core.audit.open_intents() == []


def test_restore_slower_than_the_timeout_needs_a_human_check_and_is_sent_once(
    make_harness: Callable[..., Harness], slow_vps: HoldingSimulator
) -> None:
    h = make_harness(
        sim=slow_vps.sim,
        vps_transport=httpx.HTTPTransport(),
        VPS_API_URL=slow_vps.url,
        VPS_TIMEOUT_SECONDS="0.5",
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
    )
    h.run("restore 801")
    card = next(m for m in h.channel(APPROVALS) if m.thread_ts is None)
    slow_vps.hold("POST", "/restore/")
    h.click(card, "Approve", user=BOB)
    h.settle()
    slow_vps.release()

    original, card = card, h.slack.message(APPROVALS, card.ts)
    assert "outcome unknown" in card.visible_text.lower()
    thread = [m for m in h.channel(APPROVALS) if m.thread_ts == card.ts]
    assert thread and "unknown" in thread[-1].text and f"<@{ALICE}>" in thread[-1].text
    assert only_operation(h) == [("restore.executing", "intent"), ("restore.needs_check", "unknown")]
    assert h.bot.core.approvals.get(1).state == "needs_check"

    # A second click (on a copy of the card still showing its buttons) does not send it again.
    h.click(original, "Approve", user=BOB)
    h.settle()
    assert "already approved (outcome unknown" in h.last_ephemeral(BOB).visible_text
    assert len(posts(h, "/restore/")) == 1
    h.run("pending", user=BOB)
    assert "needs a human check" in h.last_ephemeral(BOB).visible_text
    still_answers(h)


# ---- 5xx ------------------------------------------------------------------------------------------------------
def test_a_5xx_on_a_read_is_retried_and_the_user_never_notices(harness: Harness) -> None:
    harness.sim.faults.fail_next(502, times=1, methods={"GET"})
    harness.run("list 12345")
    assert "web-server-01" in harness.last_ephemeral().visible_text
    first, retry = harness.api_calls("GET")[:2]
    assert (first.status, retry.status, first.path) == (502, 200, retry.path)


def test_a_5xx_on_create_is_unknown_and_the_list_shows_what_happened(harness: Harness) -> None:
    harness.sim.faults.fail_next(503, methods={"POST"})
    harness.run("create 12345 five-oh-three")
    text = harness.last_ephemeral().visible_text
    assert UNKNOWN_WORDS in text and "HTTP 503" in text
    assert only_operation(harness) == [("create.requested", "intent"), ("create.failed", "unknown")]
    assert len(posts(harness)) == 1
    still_answers(harness)


def test_persistent_5xx_on_reads_gives_a_plain_answer_and_changes_nothing(harness: Harness) -> None:
    harness.sim.faults.fail_next(500, times=10, methods={"GET"})
    harness.bot.core.vps._sleep = lambda _seconds: None  # the back-off itself is the client's own test
    harness.run("create 12345 never-sent")
    text = harness.last_ephemeral().visible_text
    assert "VPS.org did not answer while checking the server" in text and "nothing was changed" in text
    assert harness.mutating_calls() == []
    assert operations(harness) == {}  # no intent: nothing was about to be sent
    still_answers(harness)


# ---- 429 ------------------------------------------------------------------------------------------------------
def test_429_on_create_says_when_to_retry_and_is_not_retried(harness: Harness) -> None:
    before = harness.sim.snapshot_ids(12345)
    harness.sim.faults.fail_next(429, retry_after=7, methods={"POST"})
    harness.run("create 12345 rate-limited")
    text = harness.last_ephemeral().visible_text
    assert "nothing was changed" in text and "Try again in 7 s" in text
    assert only_operation(harness) == [("create.requested", "intent"), ("create.failed", "failed")]
    assert harness.audit(action="create.failed")[0].details["status_code"] == 429
    assert len(posts(harness)) == 1
    assert harness.sim.snapshot_ids(12345) == before  # nothing was created
    still_answers(harness)


def test_429_on_a_read_waits_for_retry_after_then_answers(harness: Harness) -> None:
    waited: list[float] = []
    harness.bot.core.vps._sleep = waited.append
    harness.sim.faults.fail_next(429, retry_after=2, methods={"GET"})
    harness.run("list 12345")
    assert "web-server-01" in harness.last_ephemeral().visible_text
    assert waited == [2.0]


# ---- connection reset mid-response -----------------------------------------------------------------------------
def test_connection_reset_after_the_create_was_applied_is_unknown_not_failed(harness: Harness) -> None:
    harness.sim.faults.drop_next(after_apply=True, methods={"POST"})
    harness.run("create 12345 dropped")
    assert UNKNOWN_WORDS in harness.last_ephemeral().visible_text
    assert only_operation(harness) == [("create.requested", "intent"), ("create.failed", "unknown")]
    [post] = posts(harness)
    assert post.applied and post.fault == "drop_after_apply"
    still_answers(harness)
    assert "dropped" in harness.last_ephemeral().visible_text  # …and it did happen


def test_connection_reset_on_delete_is_unknown(harness: Harness) -> None:
    harness.sim.faults.drop_next(methods={"DELETE"})
    harness.run("delete 798")
    harness.driver.block_action("snapshot_delete_confirm", "798", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert "outcome is *unknown*" in harness.last_ephemeral().visible_text
    assert only_operation(harness) == [("delete.requested", "intent"), ("delete.failed", "unknown")]
    assert len([r for r in harness.sim.requests if r.method == "DELETE"]) == 1
    still_answers(harness)


# ---- non-JSON body ---------------------------------------------------------------------------------------------
def test_html_instead_of_json_on_create_is_unknown(harness: Harness) -> None:
    harness.sim.faults.non_json_next(methods={"POST"})
    harness.run("create 12345 html-answer")
    assert UNKNOWN_WORDS in harness.last_ephemeral().visible_text
    assert only_operation(harness) == [("create.requested", "intent"), ("create.failed", "unknown")]
    assert len(posts(harness)) == 1
    still_answers(harness)


def test_html_instead_of_json_on_a_read_is_an_honest_failure(harness: Harness) -> None:
    harness.sim.faults.non_json_next(methods={"GET"})
    harness.run("list")
    text = harness.last_ephemeral().visible_text
    assert "VPS.org did not answer while" in text and "nothing was changed" in text
    still_answers(harness)


# ---- 401 after a token rotation --------------------------------------------------------------------------------
def test_rotated_token_tells_the_user_to_call_an_admin_and_leaks_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    old_token = harness.sim.token
    harness.sim.faults.rotate_token("vps_rotated_token_0123456789")
    harness.run("create 12345 after-rotation")
    assert "token was rejected — tell an admin. Nothing was changed." in harness.last_ephemeral().visible_text
    assert harness.mutating_calls() == []

    # Rotated between the checks and the POST: the intent is there, and so is its outcome.
    harness.sim.faults.rotate_token(old_token)
    harness.sim.faults.fail_next(401, methods={"POST"}, body='{"detail": "Invalid or missing authentication token"}')
    harness.run("create 12345 rotated-mid-way")
    assert "token was rejected" in harness.last_ephemeral().visible_text
    assert only_operation(harness) == [("create.requested", "intent"), ("create.failed", "failed")]
    no_token_anywhere(harness, harness.audit(), caplog)
    assert "vps_rotated_token_0123456789" not in caplog.text
    still_answers(harness)
