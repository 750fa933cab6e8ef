"""The TOTP step-up before approving (issue 28 §2, APPROVAL_STEP_UP=totp): enrolment through `/snapshot mfa …`
(confirmed by a code, made active by another admin), a code per vote, a replayed code refused, the lock-out after
five wrong codes, and no secret or code in the logs or the audit trail. Signed commands, clicks and view
submissions against the whole app, with a settable clock."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest

from bot.logging_setup import NOISY_LOGGERS, configure_logging
from bot.secret_box import keygen
from tests.app_fixtures import ALICE, BOB, CAROL, Harness, SettableClock
from tests.scenario.test_step_up_typed import inline_error, open_form, submit

APPROVALS = "C0APPROVE"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "mfa.key"
    keygen(path)
    return path


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Logging set up as `python -m bot` does with LOG_LEVEL=DEBUG (libraries print payloads); restored."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    filters = {h: list(h.filters) for h in handlers}
    level = root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    caplog.set_level(logging.DEBUG)
    configure_logging("DEBUG")
    yield caplog
    root.handlers[:] = handlers
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


@pytest.fixture
def clock() -> SettableClock:
    clock = SettableClock()
    clock.now = datetime.now(UTC).replace(microsecond=0)
    return clock


@pytest.fixture
def totp(database_url: str, make_harness: Callable[..., Harness], key_file: Path, clock: SettableClock) -> Harness:
    h = make_harness(
        database_url=database_url,
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        APPROVAL_STEP_UP="totp",
        MFA_ENCRYPTION_KEY=str(key_file),
        SNAPSHOT_OPERATORS=ALICE,
        SNAPSHOT_APPROVERS=BOB,
        SNAPSHOT_ADMINS=CAROL,
    )
    h.bot.core.approvals.clock = clock  # the codes' time, the lock-out's, and the requests'
    return h


def enrol(h: Harness, user: str = BOB) -> str:
    """`/snapshot mfa enrol`: the secret, read from the otpauth URI only that person saw."""
    h.run("mfa enrol", user=user)
    answer = h.last_ephemeral(user).visible_text
    uri = re.search(r"otpauth://totp/[^`\s]+", answer)
    assert uri, answer
    assert "issuer=snapshot-bot" in uri.group(0)
    secret = re.search(r"secret=([A-Z2-7]+)", uri.group(0))
    assert secret
    return secret.group(1)


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def enrolled(h: Harness, clock: SettableClock, user: str = BOB) -> str:
    secret = enrol(h, user)
    h.run(f"mfa confirm {code_at(secret, clock.now)}", user=user)
    h.run(f"mfa approve @{user[2:].lower()}", user=CAROL)
    assert "active now" in h.last_ephemeral(CAROL).visible_text
    clock.now += timedelta(seconds=30)  # the confirming code is spent
    return secret


def test_enrolment_needs_a_code_and_another_admin(totp: Harness, clock: SettableClock) -> None:
    h = totp
    secret = enrol(h)
    assert [m.visible_text for m in h.channel(APPROVALS)] == []  # the URI went to Bob only
    h.run("mfa confirm 000000", user=BOB)
    assert "not right" in h.last_ephemeral(BOB).visible_text
    h.run(f"mfa confirm {code_at(secret, clock.now)}", user=BOB)
    assert "confirmed" in h.last_ephemeral(BOB).visible_text
    assert "admin who is not you" in h.last_ephemeral(BOB).visible_text

    h.run("restore 801", user=ALICE)
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert "not approved yet" in h.last_ephemeral(BOB).visible_text  # confirmed is not active

    h.run("mfa approve @bob", user=BOB)  # not an admin
    assert "admin" in h.last_ephemeral(BOB).visible_text
    h.run("mfa approve @carol", user=CAROL)
    assert "can't approve your own authenticator" in h.last_ephemeral(CAROL).visible_text
    h.run("mfa status", user=CAROL)
    assert f"<@{BOB}>" in h.last_ephemeral(CAROL).visible_text  # waiting for an admin's approval
    h.run("mfa approve @bob", user=CAROL)
    assert "active now" in h.last_ephemeral(CAROL).visible_text
    h.run("mfa status", user=BOB)
    assert "active" in h.last_ephemeral(BOB).visible_text and f"<@{CAROL}>" in h.last_ephemeral(BOB).visible_text
    assert h.actions()[:0] == [] and {"mfa.enrol_started", "mfa.confirmed", "mfa.activated"} <= set(h.actions())

    h.run("mfa enrol", user=BOB)  # an active authenticator is not swapped by whoever holds the session
    assert "already have an active authenticator" in h.last_ephemeral(BOB).visible_text


def test_an_approver_who_has_not_enrolled_is_told_how(totp: Harness) -> None:
    h = totp
    h.run("restore 801", user=ALICE)
    opened = len(h.slack.calls_to("views.open"))
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    told = h.last_ephemeral(BOB).visible_text
    assert "/snapshot mfa enrol" in told and "/snapshot mfa confirm" in told
    assert len(h.slack.calls_to("views.open")) == opened
    assert h.restore_calls() == []


def test_a_code_approves_once_and_a_replay_is_refused_even_for_another_request(
    debug_logging: pytest.LogCaptureFixture, totp: Harness, clock: SettableClock
) -> None:
    caplog = debug_logging
    h = totp
    secret = enrolled(h, clock)
    h.run("restore 801", user=ALICE)
    view = open_form(h, h.card())
    assert "6-digit code" in json.dumps(view)
    code = code_at(secret, clock.now)
    assert "not a code" in inline_error(submit(h, view, "12ab56"))
    submit(h, view, code)
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    approved = h.audit(action="restore.approved")
    assert approved[0].details["step_up"] == "totp" and approved[0].actor_id == BOB

    h.sim.add_server(50003, "db-02")
    other = h.sim.add_snapshot(50003, "db-snap")
    h.run(f"restore {other}", user=ALICE)
    second = open_form(h, h.card())
    assert "already used" in inline_error(submit(h, second, code))  # same 30 s, another request
    clock.now += timedelta(seconds=30)
    assert "already used" in inline_error(submit(h, second, code_at(secret, clock.now - timedelta(seconds=30))))
    submit(h, second, code_at(secret, clock.now))
    assert len(h.restore_calls()) == 2

    # No secret, code or URI anywhere but in Bob's one enrolment answer.
    rows = json.dumps([r.details for r in h.audit()]) + json.dumps([r.action for r in h.audit()])
    for kept in (rows, caplog.text):
        assert not re.search(r"confirm(\+|%20| )+\d{3}", kept)  # the confirming code, typed in a command
        for piece in (secret, code):
            at = kept.find(piece)
            assert at < 0, kept[max(0, at - 300) : at + 100]
    with h.bot.core.db.begin() as conn:
        stored = conn.exec_driver_sql("SELECT sealed_secret FROM mfa_enrolments").scalar_one()
    assert secret not in stored and stored.startswith("v1:")


def test_one_step_of_drift_is_allowed_not_two(totp: Harness, clock: SettableClock) -> None:
    h = totp
    secret = enrolled(h, clock)
    h.run("restore 801", user=ALICE)
    view = open_form(h, h.card())
    assert "not right" in inline_error(submit(h, view, code_at(secret, clock.now + timedelta(seconds=60))))
    submit(h, view, code_at(secret, clock.now + timedelta(seconds=30)))  # a phone 30 s ahead
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]


def test_five_wrong_codes_lock_that_persons_approvals_for_15_minutes(totp: Harness, clock: SettableClock) -> None:
    h = totp
    secret = enrolled(h, clock)
    h.run("restore 801", user=ALICE)
    view = open_form(h, h.card())
    wrong = "000000" if code_at(secret, clock.now) != "000000" else "111111"
    for _ in range(4):
        assert "not right" in inline_error(submit(h, view, wrong))
    assert "locked for 15 more minutes" in inline_error(submit(h, view, wrong))
    assert "locked" in inline_error(submit(h, view, code_at(secret, clock.now)))  # even the right code
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert "locked" in h.last_ephemeral(BOB).visible_text  # no form while locked
    assert h.restore_calls() == []
    assert len(h.audit(action="step_up.locked")) == 1 and len(h.audit(action="step_up.failed")) == 5
    with h.bot.core.db.begin() as conn:  # in the database, so every replica sees it
        assert conn.exec_driver_sql("SELECT locked_until FROM mfa_enrolments").scalar_one() is not None

    clock.now += timedelta(minutes=15, seconds=1)
    view = open_form(h, h.card())
    submit(h, view, code_at(secret, clock.now))
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]


def test_reset_by_an_admin_and_self_approval_mode(
    make_harness: Callable[..., Harness], key_file: Path, clock: SettableClock
) -> None:
    h = make_harness(
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        APPROVAL_STEP_UP="totp",
        MFA_ENCRYPTION_KEY=str(key_file),
        MFA_ENROLMENT_APPROVAL="self",
        SNAPSHOT_OPERATORS=ALICE,
        SNAPSHOT_APPROVERS=BOB,
        SNAPSHOT_ADMINS=CAROL,
    )
    h.bot.core.approvals.clock = clock
    secret = enrol(h)
    h.run(f"mfa confirm {code_at(secret, clock.now)}", user=BOB)
    assert "active" in h.last_ephemeral(BOB).visible_text
    h.run("mfa reset @bob", user=BOB)
    assert "admin" in h.last_ephemeral(BOB).visible_text
    h.run("mfa reset @bob", user=CAROL)
    assert "removed" in h.last_ephemeral(CAROL).visible_text
    assert h.audit(action="mfa.reset")[0].details == {"user": BOB}
    h.run("restore 801", user=ALICE)
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert "/snapshot mfa enrol" in h.last_ephemeral(BOB).visible_text


def test_a_sealed_secret_moved_to_another_person_does_not_open(totp: Harness, clock: SettableClock) -> None:
    h = totp
    enrolled(h, clock)
    with h.bot.core.db.begin() as conn:  # a database administrator gives Carol Bob's authenticator
        conn.exec_driver_sql(
            "INSERT INTO mfa_enrolments (user_id, sealed_secret, state, created_at, last_step, failures) "
            f"SELECT '{CAROL}', sealed_secret, 'active', created_at, 0, 0 FROM mfa_enrolments WHERE user_id = '{BOB}'"
        )
    h.run("restore 801", user=ALICE)
    view: dict[str, Any] = open_form(h, h.card(), user=CAROL)
    assert "does not open" in inline_error(submit(h, view, "123456", user=CAROL))
    assert h.restore_calls() == []


def test_two_replicas_share_the_replay_rule_and_the_lock(
    database_url: str, make_harness: Callable[..., Harness], key_file: Path, clock: SettableClock
) -> None:
    env = {
        "SNAPSHOT_APPROVAL_CHANNEL": APPROVALS,
        "APPROVAL_STEP_UP": "totp",
        "MFA_ENCRYPTION_KEY": str(key_file),
        "SNAPSHOT_OPERATORS": ALICE,
        "SNAPSHOT_APPROVERS": BOB,
        "SNAPSHOT_ADMINS": CAROL,
    }
    a = make_harness(database_url=database_url, **env)
    b = make_harness(database_url=database_url, sim=a.sim, **env)
    for replica in (a, b):
        replica.bot.core.approvals.clock = clock
    secret = enrolled(a, clock)
    a.sim.add_server(50004, "db-03")
    other = a.sim.add_snapshot(50004, "db-snap")
    a.run("restore 801", user=ALICE)
    on_a = open_form(a, a.card())
    b.run(f"restore {other}", user=ALICE)
    on_b = open_form(b, b.card())

    # The same code sent to both replicas at the same moment: one vote, one restore.
    code = code_at(secret, clock.now)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda pair: submit(pair[0], pair[1], code), ((a, on_a), (b, on_b))))
    refused = [inline_error(answer) for answer in answers if json.loads(answer.body or "{}")]
    assert len(refused) == 1 and "already used" in refused[0]
    a.settle()
    b.settle()
    assert len(a.restore_calls()) == 1 and len(a.audit(action="restore.approved")) == 1

    # Wrong codes counted on either replica lock Bob out on both.
    left = on_b if "801" in a.restore_calls()[0] else on_a
    wrong = "000000" if code_at(secret, clock.now + timedelta(seconds=30)) != "000000" else "111111"
    for replica in (a, b, a, b):
        assert "not right" in inline_error(submit(replica, left, wrong))
    assert "locked" in inline_error(submit(a, left, wrong))
    clock.now += timedelta(seconds=30)
    assert "locked" in inline_error(submit(b, left, code_at(secret, clock.now)))
    assert len(a.restore_calls()) == 1
