"""What the bot makes of VPS.org's server states (bot/usecases/server_state.py) and how long ago is said
(bot/usecases/restore_checks.py): unknown values never refuse, a missing or unreadable server is "not checked"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.usecases.restore_checks import ago, refusal, unchecked_note, unsendable
from bot.usecases.server_state import ServerState, ServerStates
from bot.vps.errors import Unavailable
from tests.unit.fakes import FakeVps


def test_each_known_status_and_an_unknown_one() -> None:
    vps = FakeVps.seeded()
    vps.add_server(501, "odd", status="migrating")
    vps.add_server(502, "gone", status="suspended")
    states = ServerStates(vps)  # type: ignore[arg-type]
    odd, suspended = states.state(501), states.state(502)
    assert odd.checked and odd.unknown_status and refusal(odd, "odd") is None and unsendable(odd, "odd") is None
    assert "'migrating', a state the bot does not know" in unchecked_note(odd)
    assert suspended.suspended and "*suspended* at VPS.org" in str(refusal(suspended, "gone"))
    assert unchecked_note(ServerState(7, "active")) == ""


def test_a_server_missing_or_unreadable_is_not_checked_and_refuses_nothing() -> None:
    vps = FakeVps.seeded()
    states = ServerStates(vps)  # type: ignore[arg-type]
    missing = states.state(999_999)
    assert not missing.checked and "not in VPS.org's server list" in missing.problem
    assert refusal(missing, "x") is None
    vps.fail_next("list_servers", Unavailable("down", status_code=503))
    down = states.state(1)
    assert not down.checked and down.problem == "VPS.org's server list could not be read (HTTP 503)"
    assert "could not be checked (VPS.org's server list could not be read (HTTP 503))" in unchecked_note(down)


def test_ago_in_words() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert ago(now - timedelta(seconds=30), now) == "just now"
    assert ago(now - timedelta(minutes=1), now) == "1 minute ago"
    assert ago(now - timedelta(minutes=3), now) == "3 minutes ago"
    assert ago(now - timedelta(hours=5), now) == "5 hours ago"
    assert ago(None, now) == "some time ago"
