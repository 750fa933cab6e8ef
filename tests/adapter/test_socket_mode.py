"""Socket Mode, end to end: `python -m bot socket` as a real process against a fake Socket Mode server.

The bot finds Slack through SLACK_API_URL (the fake Slack), asks `apps.connections.open` for a WebSocket URL with
its app-level token, and gets one of the `FakeSocketMode` server on loopback. The test then plays Slack: the
`SlackDriver` builds the same slash commands and clicks as over HTTP, and `socket_mode_sender` delivers them as
envelopes and returns the app's ack. Asserted: what users see (the fake Slack's messages and ephemerals), what
VPS.org received (the simulator, over loopback HTTP), that every envelope was acknowledged exactly once on the
connection it came on, and that a `disconnect` (refresh_requested) makes the bot reconnect through
`apps.connections.open` and carry on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from devkit.fake_slack import FakeMessage, FakeSlack, find_button
from devkit.fake_socket_mode import INTERACTIVE, SLASH_COMMANDS, FakeSocketMode, socket_mode_sender
from devkit.local import local_env
from devkit.simulator import VpsSimulator, start_in_thread
from devkit.slack_driver import SlackDriver
from storage.audit import AuditLog
from storage.db import Database
from tests.adapter.test_faults_process import eventually
from tests.app_fixtures import ALICE, BOB, OPS
from tests.scenario.test_faults_vps import HoldingSimulator

APPROVALS = "C0APPROVE"
# Deadlines, not sleeps: generous, because a loaded machine can take seconds to start a Python process.
START_TIMEOUT = 60.0


@dataclass
class SocketBot:
    proc: subprocess.Popen[bytes]
    log: Path
    slack: FakeSlack
    socket_mode: FakeSocketMode
    sim: VpsSimulator
    driver: SlackDriver

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def restore_posts(self) -> list[str]:
        return [r.path for r in self.sim.requests if r.method == "POST" and r.path.endswith("/restore/")]

    def card(self) -> FakeMessage | None:
        cards = [m for m in self.slack.messages(APPROVALS) if m.thread_ts is None]
        return cards[-1] if cards else None

    def answers_for(self, user: str, after: int) -> list[str]:
        """The visible text of ephemerals `user` got after the first `after` of them."""
        return [e.visible_text for e in self.slack.ephemerals_for(user)[after:]]


@contextmanager
def running_socket_bot(tmp_path: Path, fake_slack: FakeSlack, sim: VpsSimulator, vps_url: str) -> Iterator[SocketBot]:
    """`python -m bot socket` connected to a fake Socket Mode server; killed (if still running) at the end."""
    socket_mode = FakeSocketMode(fake_slack).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        **local_env(
            fake_slack,
            sim,
            f"sqlite:///{tmp_path / 'bot.db'}",
            vps_url=vps_url,
            SLACK_APP_TOKEN=fake_slack.app_token,
            SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
            SNAPSHOT_POLL_SECONDS="0.2",
            LOG_LEVEL="INFO",
            RESTORE_SAFETY_SNAPSHOT="off",  # snapshots here never complete; the safety step is tested elsewhere
        ),
    }
    log = tmp_path / "bot.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "socket"],
            cwd=tmp_path,  # no stray .env is read
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    driver = SlackDriver(
        socket_mode_sender(socket_mode),
        "unused: Socket Mode is not signed",
        team_id=fake_slack.team_id,
        api_app_id=fake_slack.api_app_id,
        response_url_factory=fake_slack.new_response_url,
    )
    bot = SocketBot(proc, log, fake_slack, socket_mode, sim, driver)
    try:
        try:
            socket_mode.wait_for_connection(1, timeout=START_TIMEOUT)
        except AssertionError:
            raise AssertionError(f"the bot never connected; its log:\n{bot.log_text()}") from None
        yield bot
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        socket_mode.stop()


@pytest.fixture
def socket_bot(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[SocketBot]:
    sim = VpsSimulator(completion_delay=3600)
    vps_url, stop_vps = start_in_thread(sim)
    try:
        with running_socket_bot(tmp_path, fake_slack, sim, vps_url) as bot:
            yield bot
    finally:
        stop_vps()


def assert_every_envelope_acked_once(bot: SocketBot) -> None:
    for envelope in bot.socket_mode.envelopes:
        acks = bot.socket_mode.acks_of(envelope.envelope_id)
        assert len(acks) == 1, (envelope, acks)
        assert acks[0].connection == envelope.connection
    assert bot.socket_mode.unexpected == []


def test_socket_mode_connects_with_the_app_token_and_answers_list_across_a_refresh(socket_bot: SocketBot) -> None:
    bot = socket_bot
    opens = bot.slack.calls_to("apps.connections.open")
    assert [(c.token, c.ok) for c in opens] == [(bot.slack.app_token, True)]
    # The app-level token is used for nothing else, and the bot token not for Socket Mode.
    assert all(c.token == bot.slack.bot_token for c in bot.slack.calls if c.method != "apps.connections.open")

    # `/snapshot list`: acknowledged with no payload, the list comes to Alice alone through response_url.
    response = bot.driver.command("list", user_id=ALICE, user_name="alice", channel_id=OPS)
    assert (response.status, response.body) == (200, "")
    listing = eventually(lambda: bot.answers_for(ALICE, 0), "the list of snapshots")[0]
    assert "pre-migration-snapshot" in listing and "801" in listing
    assert bot.slack.messages(OPS) == []  # nobody else sees it

    # `/snapshot help` is answered in the ack itself (a slash command accepts a response payload).
    help_ack = bot.driver.command("help", user_id=ALICE, channel_id=OPS).json()
    assert help_ack["response_type"] == "ephemeral" and help_ack["text"] == "Snapshot bot help"
    assert "/snapshot list" in str(help_ack["blocks"])

    # Slack recycles the connection: the bot asks for a new URL, connects, drops the old one, and carries on.
    second = bot.socket_mode.request_refresh()
    assert second.number == 2 and bot.socket_mode.connections[0].closed
    assert len(bot.slack.calls_to("apps.connections.open")) == 2
    assert bot.socket_mode.refused == []  # it never reused the old URL
    seen = len(bot.slack.ephemerals_for(BOB))
    response = bot.driver.command("list 12345", user_id=BOB, user_name="bob", channel_id=OPS)
    assert (response.status, response.body) == (200, "")
    listing = eventually(lambda: bot.answers_for(BOB, seen), "the list after the reconnect")[0]
    assert "pre-migration-snapshot" in listing

    assert [e.connection for e in bot.socket_mode.envelopes] == [1, 1, 2]
    assert_every_envelope_acked_once(bot)
    assert bot.proc.poll() is None, bot.log_text()


def test_socket_mode_restore_needs_a_second_person_and_reaches_vps_once(socket_bot: SocketBot) -> None:
    bot = socket_bot
    response = bot.driver.command("restore 801", user_id=ALICE, user_name="alice", channel_id=OPS)
    assert response.status == 200
    card = eventually(bot.card, "the approval card")
    assert "pre-migration-snapshot" in card.visible_text
    told = eventually(lambda: bot.answers_for(ALICE, 0), "the requester's confirmation")
    assert "waiting for approval" in told[-1]

    # Alice cannot approve her own request: refused, nothing sent.
    response = bot.driver.click(card, "Approve", user_id=ALICE, user_name="alice")
    assert (response.status, response.body) == (200, "")  # a click is only acknowledged
    refused = eventually(lambda: [t for t in bot.answers_for(ALICE, 0) if "own request" in t], "the refusal")
    assert "someone else has to" in refused[0]

    # The connection is recycled between the request and the approval: state lives in the database, not the socket.
    bot.socket_mode.request_refresh()

    response = bot.driver.click(card, "Approve", user_id=BOB, user_name="bob")
    assert (response.status, response.body) == (200, "")
    updated = eventually(
        lambda: "being restored" in bot.slack.message(APPROVALS, card.ts).visible_text, "the card to show the outcome"
    )
    assert updated
    final = bot.slack.message(APPROVALS, card.ts)
    assert f"<@{BOB}>" in final.visible_text
    with pytest.raises(AssertionError, match="no element 'Approve'"):
        find_button(final.blocks, "Approve")  # the buttons are gone
    thread = eventually(
        lambda: [m for m in bot.slack.messages(APPROVALS) if m.thread_ts == card.ts], "the requester's thread reply"
    )
    assert f"<@{ALICE}>" in thread[0].text and "restore has started" in thread[0].text
    assert bot.restore_posts() == ["/api/v1/snapshots/801/restore/"]

    # A second click on the same card changes nothing.
    seen = len(bot.slack.ephemerals_for(BOB))
    bot.driver.click(card, "Approve", user_id=BOB, user_name="bob")
    again = eventually(lambda: bot.answers_for(BOB, seen), "the answer to the second click")
    assert "nothing was done" in again[0]
    assert bot.restore_posts() == ["/api/v1/snapshots/801/restore/"]

    assert [e.type for e in bot.socket_mode.envelopes] == [SLASH_COMMANDS, INTERACTIVE, INTERACTIVE, INTERACTIVE]
    assert_every_envelope_acked_once(bot)
    assert bot.proc.poll() is None, bot.log_text()


# -- the fake itself: the protocol rules the end-to-end tests rely on -------------------------------------------


def test_apps_connections_open_takes_the_app_token_only_and_needs_a_socket_server(fake_slack: FakeSlack) -> None:
    bot_client = WebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url)
    with pytest.raises(SlackApiError) as no_server:
        bot_client.apps_connections_open(app_token=fake_slack.app_token)
    assert no_server.value.response["error"] == "access_denied"
    with FakeSocketMode(fake_slack) as socket_mode:
        with pytest.raises(SlackApiError) as wrong_kind:
            bot_client.apps_connections_open(app_token=fake_slack.bot_token)
        assert wrong_kind.value.response["error"] == "not_allowed_token_type"
        app_client = WebClient(token=fake_slack.app_token, base_url=fake_slack.api_url)
        with pytest.raises(SlackApiError) as app_token_elsewhere:
            app_client.chat_postMessage(channel=OPS, text="hi")
        assert app_token_elsewhere.value.response["error"] == "not_allowed_token_type"
        url = bot_client.apps_connections_open(app_token=fake_slack.app_token)["url"]
        assert url.startswith(f"ws://127.0.0.1:{socket_mode.port}/link/?ticket=")
    # Recorded calls never keep a token in their arguments (slack_sdk also puts the app token in the body).
    assert all("token" not in call.args for call in fake_slack.calls)


def test_each_socket_url_admits_one_connection_which_is_greeted_and_acks_are_recorded(fake_slack: FakeSlack) -> None:
    with FakeSocketMode(fake_slack) as socket_mode:
        url = socket_mode.issue_url()
        with connect(url) as app_side:
            hello = json.loads(app_side.recv(timeout=10))
            assert hello["type"] == "hello" and hello["connection_info"] == {"app_id": fake_slack.api_app_id}
            assert socket_mode.wait_for_connection(1).number == 1
            with pytest.raises(InvalidStatus):  # the same URL again: refused at the handshake
                connect(url)
            envelope = socket_mode.send(SLASH_COMMANDS, {"command": "/snapshot"}, accepts_response_payload=True)
            sent = json.loads(app_side.recv(timeout=10))
            assert sent == {
                "envelope_id": envelope.envelope_id,
                "type": "slash_commands",
                "payload": {"command": "/snapshot"},
                "accepts_response_payload": True,
            }
            app_side.send("not an ack")  # before the ack: once the ack is seen, this has been handled too
            app_side.send(json.dumps({"envelope_id": envelope.envelope_id, "payload": {"text": "ok"}}))
            ack = socket_mode.wait_for_ack(envelope.envelope_id)
            assert (ack.payload, ack.connection) == ({"text": "ok"}, 1)
        assert socket_mode.refused == [url.split(str(socket_mode.port), 1)[1]]
        assert socket_mode.unexpected == ["not an ack"]


def test_sigterm_lets_acknowledged_work_finish_before_the_socket_mode_process_exits(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """A platform stops `python -m bot socket` with SIGTERM while VPS.org sits on a create the bot acknowledged: the
    process stops taking envelopes, waits for the call, records its outcome and exits 0 (it used to close the
    VPS.org client and the database under the running call)."""
    holder = HoldingSimulator(VpsSimulator(completion_delay=3600))
    try:
        with running_socket_bot(tmp_path, fake_slack, holder.sim, holder.url) as bot:
            holder.hold("POST", "/snapshots/")
            bot.driver.command("create 12345 graceful", user_id=ALICE, user_name="alice", channel_id=OPS)
            assert holder.held.wait(30), bot.log_text()
            bot.proc.send_signal(signal.SIGTERM)
            eventually(lambda: "shutdown: draining" in bot.log_text(), "the process to start draining")
            holder.release()
            assert bot.proc.wait(timeout=40) == 0, bot.log_text()
            assert "shutdown: worker drained (clean)" in bot.log_text()
            announced = [m.visible_text for m in fake_slack.messages(OPS)]
            assert any("started snapshot `graceful`" in text for text in announced), announced
            db = Database(f"sqlite:///{tmp_path / 'bot.db'}")
            try:
                actions = [(r.action, r.outcome) for r in reversed(AuditLog(db).query(limit=100))]
            finally:
                db.dispose()
            assert [a for a in actions if a[0].startswith("create.")] == [
                ("create.requested", "intent"),
                ("create.succeeded", "ok"),
            ]
    finally:
        holder.stop()
