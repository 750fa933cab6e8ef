"""Issue 13 §1, §2, §4, §5: exactly the approved restore, once, or visibly nothing — on SQLite and PostgreSQL.

Driven as Slack drives the bot (signed requests, button clicks) against the VPS.org simulator. Time is moved with
the database clock's test offset (`db.clock.offset`) and the replica's own clock (`approvals.clock`), and slow
VPS.org answers are held or delayed by short, configured deadlines: nothing here sleeps to get green.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.usecases.approvals import ApprovalService, DecisionResult
from bot.wiring import ticker_for
from devkit.fake_slack import FakeMessage
from tests.app_fixtures import ALICE, BOB, OPS, Harness
from tests.scenario.test_faults_vps import HoldingSimulator

APPROVALS = "C0APPROVE"
# A 2 s re-check budget: room for a loaded machine on the fast path; the slow path makes every GET take 5 s.
FAST = {"SNAPSHOT_RECHECK_DEADLINE_SECONDS": "2", "SNAPSHOT_CLAIM_TTL_SECONDS": "30"}


@pytest.fixture
def make(database_url: str, make_harness: Callable[..., Harness]) -> Callable[..., Harness]:
    def factory(**env: Any) -> Harness:
        return make_harness(database_url=database_url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, **{**FAST, **env})

    return factory


@pytest.fixture
def held_vps() -> Iterator[HoldingSimulator]:
    from devkit.simulator import VpsSimulator

    holder = HoldingSimulator(VpsSimulator(completion_delay=0))
    yield holder
    holder.stop()


@pytest.fixture
def make_held(
    database_url: str, make_harness: Callable[..., Harness], held_vps: HoldingSimulator
) -> Callable[..., Harness]:
    """A harness whose VPS.org answers over real HTTP from `held_vps`, so a test can hold a call mid-flight."""

    def factory(**env: Any) -> Harness:
        return make_harness(
            database_url=database_url,
            sim=held_vps.sim,
            vps_transport=httpx.HTTPTransport(),
            VPS_API_URL=held_vps.url,
            SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
            **env,
        )

    return factory


# ---- what each party says ----------------------------------------------------------------------------------------
def has_buttons(message: FakeMessage) -> bool:
    return any(b.get("type") == "actions" for b in message.blocks)


def thread(h: Harness) -> str:
    c = h.card()
    return "\n".join(m.text for m in h.channel(APPROVALS) if m.thread_ts == c.ts)


def approvals(h: Harness) -> ApprovalService:
    return h.bot.core.approvals


def state(h: Harness) -> str:
    return approvals(h).get(1).state


def request_restore(h: Harness, snapshot_id: int = 801) -> FakeMessage:
    h.run(f"restore {snapshot_id}", user=ALICE)
    return h.card()


def approve(h: Harness, user: str = BOB) -> None:
    h.click(h.card(), "Approve", user=user)
    h.settle()


def tick(h: Harness) -> None:
    ticker_for(h.bot, 60).tick()
    h.settle()


def later_by_the_database(h: Harness, seconds: float) -> None:
    h.bot.core.db.clock.offset = timedelta(seconds=seconds)


def time_passes(h: Harness, seconds: float) -> None:
    """For everyone: the database and this replica (a crashed executor's claim and its row both age)."""
    db_clock = getattr(h.bot.core.db, "clock", None)
    if db_clock is not None:
        db_clock.offset = timedelta(seconds=seconds)
    service = approvals(h)
    real = service.clock
    service.clock = lambda: real() + timedelta(seconds=seconds)


# ---- §1 claim, fencing, the pre-call deadline -------------------------------------------------------------------
def test_recheck_slower_than_its_deadline_sends_nothing_and_can_be_approved_again(
    make: Callable[..., Harness],
) -> None:
    h = make()
    request_restore(h)
    h.sim.faults.latency = 5.0  # every GET takes 5 s; the whole re-check may take 2 s
    approve(h)
    h.sim.faults.latency = 0.0
    assert h.restore_posts() == []
    assert state(h) == "pending"
    c = h.card()
    assert "too slow to re-check" in c.visible_text and "nothing was sent" in c.visible_text
    assert has_buttons(c), "the request must be approvable (or cancellable) again"
    assert f"<@{ALICE}>" in thread(h) and "nothing was sent" in thread(h)
    assert "restore.not_sent" in h.actions() and "restore.executing" not in h.actions()

    approve(h)  # the same approver may approve again: the first approval was spent on an attempt that sent nothing
    assert len(h.restore_posts()) == 1
    assert state(h) == "executed"


def test_retry_after_beyond_the_budget_is_not_waited_for(make: Callable[..., Harness]) -> None:
    h = make(SNAPSHOT_RECHECK_DEADLINE_SECONDS="5")
    request_restore(h)
    waits: list[float] = []
    h.bot.core.vps._sleep = waits.append  # a wait the client wanted would show here
    h.sim.faults.fail_next(429, times=3, retry_after=30, methods=["GET"])
    approve(h)
    assert waits == [], "a 30 s Retry-After cannot end inside a 5 s budget: do not wait for it"
    assert h.restore_posts() == []
    assert state(h) == "pending"
    assert "too slow to re-check" in h.card().visible_text


def test_ticker_during_a_slow_recheck_flags_nothing_and_the_restore_goes_out_once(
    make_held: Callable[..., Harness], held_vps: HoldingSimulator
) -> None:
    h = make_held(SNAPSHOT_RECOVERY_AFTER_SECONDS="1")
    request_restore(h)
    held_vps.hold("GET", "/snapshots/")
    h.click(h.card(), "Approve", user=BOB)
    assert held_vps.held.wait(10), "the re-check never reached VPS.org"
    # This replica's clock says the request has been executing for ten minutes; the claim (database clock) is live.
    real = approvals(h).clock
    approvals(h).clock = lambda: real() + timedelta(minutes=10)
    ticker_for(h.bot, 60).tick()
    assert state(h) == "executing"
    assert "outcome unknown" not in h.card().visible_text
    held_vps.release()
    h.settle()
    assert len(h.restore_posts()) == 1
    assert state(h) == "executed"
    assert "restore.needs_check" not in h.actions()
    assert "outcome is *unknown*" not in thread(h)


def test_a_claim_that_expires_during_the_recheck_is_never_sent(
    make_held: Callable[..., Harness], held_vps: HoldingSimulator
) -> None:
    h = make_held()
    request_restore(h)
    held_vps.hold("GET", "/snapshots/")
    h.click(h.card(), "Approve", user=BOB)
    assert held_vps.held.wait(10)
    later_by_the_database(h, 3600)  # the executor looks dead (a paused VM): its claim has run out
    ticker_for(h.bot, 60).tick()  # (no settle: the "dead" executor is still held)
    assert state(h) == "pending"
    assert "nothing was sent" in h.card().visible_text and has_buttons(h.card())
    later_by_the_database(h, 0)
    held_vps.release()  # the "dead" executor wakes up: its check-and-mark must fail
    h.settle()
    assert h.restore_posts() == []
    assert state(h) == "pending"
    assert h.actions().count("restore.not_sent") == 1
    assert "restore.executing" not in h.actions()


def test_claim_deadline_is_the_database_clock_on_sqlite_and_postgresql(make: Callable[..., Harness]) -> None:
    h = make()
    request_restore(h)
    service = approvals(h)
    service.executing.execute = lambda actor, rid, *token: DecisionResult(service.get(rid), "claim_lost", "")  # type: ignore[method-assign]
    approve(h)
    assert state(h) == "executing"
    tick(h)  # within the claim (30 s): nothing happens
    assert state(h) == "executing"
    later_by_the_database(h, 20)  # well inside the 30 s claim, however slow this machine is
    tick(h)
    assert state(h) == "executing"
    later_by_the_database(h, 31)
    tick(h)
    assert state(h) == "pending"


# ---- §2 the approval is bound to what the card showed -----------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda sim: sim.move_snapshot(801, 12346), "now belongs to server 12346, not 12345"),
        (lambda sim: sim.rename_snapshot(801, "something-else"), "now named 'something-else'"),
    ],
    ids=["moved", "renamed"],
)
def test_a_snapshot_changed_since_the_card_is_not_restored(
    make: Callable[..., Harness], change: Callable[[Any], None], words: str
) -> None:
    h = make()
    request_restore(h)
    change(h.sim)
    approve(h)
    assert h.restore_posts() == []
    assert state(h) == "stale"
    assert words in h.card().visible_text and "not sent" in h.card().visible_text
    assert not has_buttons(h.card())
    assert words in thread(h)
    stale = [r for r in h.audit(action="restore.stale")]
    assert len(stale) == 1 and stale[0].outcome == "failed" and words in " ".join(stale[0].details["changed"])


def test_a_restore_answer_naming_another_server_is_flagged_loudly(make: Callable[..., Harness]) -> None:
    h = make()
    request_restore(h)
    answer = {
        "status": "success",
        "message": "Snapshot restoration initiated successfully",
        "snapshot": {"id": 801, "name": "pre-migration-snapshot"},
        "server": {"id": 12346, "name": "db-server-01", "status": "restoring"},
    }
    h.sim.faults.fail_next(200, body=json.dumps(answer), methods=["POST"])
    approve(h)
    assert len(h.restore_posts()) == 1
    assert state(h) == "needs_check"
    assert ":rotating_light:" in h.card().visible_text or "🚨" in h.card().visible_text
    assert "server 12346" in h.card().visible_text
    flagged = h.audit(action="restore.needs_check")
    assert len(flagged) == 1 and flagged[0].outcome == "unknown"
    assert any("server 12346" in m.text for m in h.channel(OPS))


# ---- §4 never "does not exist" from an incomplete listing -------------------------------------------------------
def test_an_incomplete_listing_is_could_not_confirm_never_does_not_exist(make: Callable[..., Harness]) -> None:
    h = make()
    h.sim.faults.hide_in_lists(801)
    h.run("restore 801")
    said = h.last_ephemeral(ALICE).visible_text
    assert "could not be confirmed" in said and "does not exist" not in said

    h.sim.faults.clear()
    request_restore(h)
    h.sim.faults.hide_in_lists(801)
    approve(h)
    assert h.restore_posts() == []
    assert state(h) == "pending"
    assert "no longer exists" not in h.card().visible_text and "could not be confirmed" in h.card().visible_text
    assert "restore.failed" not in h.actions()


# ---- §5 audit rows that can always be written -------------------------------------------------------------------
def test_a_lone_surrogate_in_the_restore_answer_is_recorded(make: Callable[..., Harness]) -> None:
    h = make()
    request_restore(h)
    body = (
        '{"status": "success", "message": "Restore started \\ud800", "snapshot": {"id": 801}, '
        '"server": {"id": 12345, "name": "web-server-01", "status": "restoring"}}'
    )
    h.sim.faults.fail_next(200, body=body, methods=["POST"])
    approve(h)
    assert state(h) == "executed"
    executed = h.audit(action="restore.executed")
    assert len(executed) == 1 and executed[0].details["api_message"] == "Restore started \ufffd"
    assert h.bot.core.audit.verify().ok


def test_a_refusal_from_a_user_with_a_lone_surrogate_in_their_name_is_recorded(make: Callable[..., Harness]) -> None:
    h = make()
    c = request_restore(h)
    h.driver.click(c, "Approve", user_id=ALICE, user_name="ali\ud800ce")
    h.settle()
    assert "can't approve your own request" in h.last_ephemeral(ALICE).visible_text
    refused = h.audit(action="refused.self_approval")
    assert len(refused) == 1 and refused[0].actor_name == "ali\ufffdce"
    assert h.bot.core.audit.verify().ok


def _failing_outcome_writes(h: Harness, times: int) -> list[str]:
    audit = h.bot.core.audit
    real = audit.append
    failures: list[str] = []

    def append(entry: Any, **kwargs: Any) -> Any:
        if entry.action == "restore.executed" and len(failures) < times:
            failures.append(entry.action)
            raise RuntimeError("disk full")
        return real(entry, **kwargs)

    audit.append = append  # type: ignore[method-assign]
    return failures


def test_an_outcome_row_that_fails_once_is_retried(make: Callable[..., Harness]) -> None:
    h = make()
    request_restore(h)
    failures = _failing_outcome_writes(h, times=1)
    approve(h)
    assert failures == ["restore.executed"]
    assert state(h) == "executed"
    assert len(h.audit(action="restore.executed")) == 1
    assert len(h.restore_posts()) == 1


def test_an_outcome_row_that_cannot_be_written_flags_the_request_loudly(
    make: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    h = make()
    request_restore(h)
    _failing_outcome_writes(h, times=100)
    with caplog.at_level(logging.CRITICAL):
        approve(h)
    assert len(h.restore_posts()) == 1
    assert state(h) == "needs_check"  # never left in `sending`
    assert "could not record it in the audit log" in h.card().visible_text
    assert any(r.levelno == logging.CRITICAL and "could not be written" in r.getMessage() for r in caplog.records)


# ---- Done when: card, thread, audit rows and VPS.org calls tell one story after each fault ----------------------
def _slow_recheck(h: Harness) -> None:
    h.sim.faults.latency = 5.0
    approve(h)
    h.sim.faults.latency = 0.0


def _crash_before_sending(h: Harness) -> None:
    service = approvals(h)
    # The process dies right after winning the approval: the executor never runs.
    service.executing.execute = lambda actor, rid, *token: DecisionResult(service.get(rid), "claim_lost", "")  # type: ignore[method-assign]
    approve(h)
    time_passes(h, 600)
    tick(h)


def _crash_after_sending(h: Harness) -> None:
    service = approvals(h)
    # The process dies after the POST, before the answer is recorded.
    service.sending.finish = lambda actor, rid, *args, **kwargs: DecisionResult(service.get(rid), "claim_lost", "")  # type: ignore[method-assign]
    approve(h)
    time_passes(h, 600)
    tick(h)


def _moved(h: Harness) -> None:
    h.sim.move_snapshot(801, 12346)
    approve(h)


def _renamed(h: Harness) -> None:
    h.sim.rename_snapshot(801, "renamed-by-someone")
    approve(h)


def _incomplete(h: Harness) -> None:
    h.sim.faults.hide_in_lists(801)
    approve(h)


# scenario: (fault, final state, POSTs, words on the card, words in the thread, the closing audit row)
STORIES: dict[str, tuple[Callable[[Harness], None], str, int, str, str, tuple[str, str]]] = {
    "slow_recheck": (
        _slow_recheck,
        "pending",
        0,
        "nothing was sent",
        "nothing was sent",
        ("restore.not_sent", "failed"),
    ),
    "crash_before_sending": (
        _crash_before_sending,
        "pending",
        0,
        "nothing was sent",
        "nothing was sent",
        ("restore.not_sent", "failed"),
    ),
    "crash_after_sending": (
        _crash_after_sending,
        "needs_check",
        1,
        "outcome unknown",
        "outcome is *unknown*",
        ("restore.needs_check", "unknown"),
    ),
    "moved": (_moved, "stale", 0, "not sent", "not sent", ("restore.stale", "failed")),
    "renamed": (_renamed, "stale", 0, "not sent", "not sent", ("restore.stale", "failed")),
    "incomplete_listing": (
        _incomplete,
        "pending",
        0,
        "nothing was sent",
        "nothing was sent",
        ("restore.not_sent", "failed"),
    ),
}


@pytest.mark.parametrize("scenario", list(STORIES))
def test_card_thread_audit_and_vps_agree_after_each_fault(make: Callable[..., Harness], scenario: str) -> None:
    fault, final, posts, on_card, in_thread, closing = STORIES[scenario]
    h = make()
    request_restore(h)
    fault(h)
    h.sim.faults.clear()

    # VPS.org
    assert len(h.restore_posts()) == posts
    # the request and its card
    assert state(h) == final
    text = h.card().visible_text
    assert on_card in text, text
    assert has_buttons(h.card()) == (final == "pending")
    # the requester, in the card's thread
    assert f"<@{ALICE}>" in thread(h) and in_thread in thread(h), thread(h)
    # the audit: an intent row exactly when a call was made, and one closing row that says the same
    records = list(reversed(h.audit()))
    intents = [r for r in records if r.action == "restore.executing"]
    assert len(intents) == posts
    closing_rows = [(r.action, r.outcome) for r in records if r.action == closing[0]]
    assert closing_rows == [closing]
    if posts:
        closer = next(r for r in records if r.action == closing[0])
        assert closer.operation_id == intents[0].operation_id
    assert h.bot.core.audit.verify().ok

    # and nothing is ever sent afterwards by the ticker
    tick(h)
    assert len(h.restore_posts()) == posts


# ---- the building blocks: the database's clock, and a bounded read ----------------------------------------------
def test_database_clock_deadlines_compare_with_what_sqlalchemy_stores(database: Any) -> None:
    """SQLite keeps DateTime as text: the SQL clock must write and compare in exactly SQLAlchemy's form."""
    import sqlalchemy as sa

    from storage.db import utcnow
    from storage.models import ApprovalRequest

    now = utcnow()
    with database.session() as session:
        for number, expiry in ((1, None), (2, now - timedelta(seconds=1)), (3, now + timedelta(seconds=2))):
            session.add(
                ApprovalRequest(
                    id=number,
                    kind="restore",
                    state="executing",
                    requester_id=ALICE,
                    snapshot_id=801,
                    snapshot_name="x",
                    snapshot_status="completed",
                    server_id=12345,
                    created_at=now,
                    expires_at=now,
                    updated_at=now,
                    claim_expires_at=expiry,
                )
            )
        session.flush()
        session.execute(
            sa.update(ApprovalRequest)
            .where(ApprovalRequest.id == 1)
            .values(claim_expires_at=database.clock.now(timedelta(seconds=60)))
        )
    with database.session() as session:
        live = session.scalars(
            sa.select(ApprovalRequest.id)
            .where(ApprovalRequest.claim_expires_at > database.clock.now())
            .order_by(ApprovalRequest.id)
        ).all()
        assert live == [1, 3]
        stored = session.get(ApprovalRequest, 1).claim_expires_at  # type: ignore[union-attr]
        assert abs((stored - now).total_seconds() - 60) < 5  # read back as an aware UTC datetime
        database.clock.offset = timedelta(seconds=3)  # three seconds later, as the database sees it
        assert session.scalars(
            sa.select(ApprovalRequest.id).where(ApprovalRequest.claim_expires_at > database.clock.now())
        ).all() == [1]


def test_a_trickling_answer_cannot_outlast_the_total_deadline() -> None:
    """httpx's read timeout restarts with every chunk; the deadline bounds the whole call."""
    import socket
    import threading
    import time

    from bot.vps.client import VpsClient
    from bot.vps.errors import DeadlineExceeded

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            body = b'{"count": 0, "next": null, "results": []}' + b" " * 60
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            conn.sendall(f"Content-Length: {len(body)}\r\n\r\n".encode())
            for byte in body:  # one byte every 50 ms: each well inside the read timeout, 5 s in all
                if stop.wait(0.05):
                    return
                conn.sendall(bytes([byte]))

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    port = listener.getsockname()[1]
    client = VpsClient(f"http://127.0.0.1:{port}/api/v1/", "t", timeout=1.0, get_retries=0)
    started = time.monotonic()
    try:
        with pytest.raises(DeadlineExceeded):
            client.list_snapshots(deadline=client.clock() + 0.5)
        assert time.monotonic() - started < 1.5
    finally:
        stop.set()
        client.close()
        listener.close()
        server.join(5)


def test_the_claim_must_outlast_the_recheck_deadline() -> None:
    from bot.config import ConfigError, load_settings

    settings = load_settings({"SNAPSHOT_RECHECK_DEADLINE_SECONDS": "20"}, dotenv_path=None)
    assert (settings.recheck_deadline_seconds, settings.claim_ttl_seconds) == (20.0, 50.0)
    with pytest.raises(ConfigError, match="SNAPSHOT_CLAIM_TTL_SECONDS"):
        load_settings({"SNAPSHOT_RECHECK_DEADLINE_SECONDS": "20", "SNAPSHOT_CLAIM_TTL_SECONDS": "20"}, dotenv_path=None)


def test_an_answer_that_arrives_after_the_flag_settles_the_request(
    make_held: Callable[..., Harness], held_vps: HoldingSimulator
) -> None:
    h = make_held()
    request_restore(h)
    held_vps.hold("POST", "/restore/")
    h.click(h.card(), "Approve", user=BOB)
    assert held_vps.held.wait(10), "the restore never reached VPS.org"
    later_by_the_database(h, 3600)  # the call outlives its claim: it may or may not have been carried out
    ticker_for(h.bot, 60).tick()
    assert state(h) == "needs_check"
    assert "outcome unknown" in h.card().visible_text and "outcome is *unknown*" in thread(h)
    held_vps.release()  # VPS.org answers after all
    h.settle()
    assert len(h.restore_posts()) == 1
    assert state(h) == "executed"
    assert "*being restored*" in h.card().visible_text  # and followed from here (issue 17 §4)
    rows = [(r.action, r.outcome) for r in reversed(h.audit()) if r.operation_id]
    assert rows == [
        ("restore.executing", "intent"),
        ("restore.needs_check", "unknown"),
        ("restore.executed", "ok"),
    ]
    ticker_for(h.bot, 60).tick()
    assert len(h.restore_posts()) == 1
