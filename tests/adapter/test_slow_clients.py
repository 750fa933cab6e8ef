"""Issue 24 §1: clients that never finish their request cannot silence `python -m bot serve`.

The real `serve` (gunicorn, one worker of 4 threads) runs as a process; raw sockets on loopback hold six times as
many connections as it has threads, each left mid-request (half of the headers, the headers and one byte of a
1000-byte body, nothing at all, half of a second request on a kept-alive connection, or nothing after a first).
Signed commands are still answered within Slack's 3 seconds, and every slow connection is dropped at the read
deadline (408 when a request had begun). A client that is slow but finishes in time is served; what cannot be
buffered is refused.

One `serve` serves the whole module (the tests do not disturb each other: every slow connection is gone before the
next test reads anything), and the five kinds of slow connection are held open together, so the 5 s deadline is
waited out once rather than five times; each kind's test still checks its own connections and their deadline.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from bot.http_worker import REQUEST_READ_SECONDS
from devkit.fake_slack import FakeSlack
from devkit.slack_driver import SlackDriver
from devkit.slow_clients import KINDS, closed_by_server, open_slow
from tests.adapter.test_faults_process import BotProcess, World, world_in
from tests.adapter.test_metrics_process import Server, scrape, server, sim  # noqa: F401 (fixtures)
from tests.app_fixtures import ALICE, OPS

# The whole module on one worker, in a row: its shared `serve` is started once.
pytestmark = pytest.mark.xdist_group("slow-clients-serve")

THREADS = 4  # test_faults_process.World.start: serve --workers 1 --threads 4
SLOW_CONNECTIONS = 6 * THREADS
ACK_LIMIT = 3.0  # Slack's promise
DROP_WITHIN = REQUEST_READ_SECONDS + 10.0  # the deadline, plus a loaded machine's delay in the worker's loop


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def assert_commands_answered(slack: SlackDriver, count: int = 5) -> None:
    for n in range(count):
        started = time.monotonic()
        response = slack.command("help", user_id=ALICE, channel_id=OPS)
        took = time.monotonic() - started
        assert response.status == 200, f"command {n}: {response.status} {response.body!r}"
        assert took < ACK_LIMIT, f"command {n} answered after {took:.1f} s"


@dataclass
class Started:
    world: World
    bot: BotProcess
    slack: SlackDriver


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """One `serve --workers 1 --threads 4` (test_faults_process.World.start) for every test of this module."""
    with FakeSlack() as fake, world_in(tmp_path_factory.mktemp("slow-clients"), fake) as world:
        bot, slack = world.start()
        yield Started(world, bot, slack)


@dataclass
class HeldOpen:
    sockets: dict[str, list[socket.socket]]
    opened: dict[str, float]  # when the last connection of each kind was opened (its deadline runs from there)


@pytest.fixture(scope="module")
def held_open(started: Started) -> Iterator[HeldOpen]:
    """SLOW_CONNECTIONS of every kind left mid-request, all at once; signed commands are answered in time while
    every one of them is held (five times the connections each kind's test once held alone)."""
    held = HeldOpen({kind: [] for kind in KINDS}, {})
    try:
        for kind in KINDS:
            held.sockets[kind] = [open_slow(port_of(started.bot.url), kind) for _ in range(SLOW_CONNECTIONS)]
            held.opened[kind] = time.monotonic()
        assert_commands_answered(started.slack)
        yield held
    finally:
        for sockets in held.sockets.values():
            for sock in sockets:
                sock.close()


@pytest.mark.parametrize("kind", KINDS)
def test_connections_left_mid_request_hold_no_thread_and_are_dropped_at_the_deadline(
    started: Started, held_open: HeldOpen, kind: str
) -> None:
    opened = held_open.opened[kind]
    assert_commands_answered(started.slack)  # still, with the connections of this kind held (or gone by now)
    for n, sock in enumerate(held_open.sockets[kind]):
        closed, said = closed_by_server(sock, within=max(0.1, opened + DROP_WITHIN - time.monotonic()))
        assert closed, f"slow connection {n} ({kind}) still open {DROP_WITHIN:.0f} s after it was opened"
        if kind in ("silent", "idle-keepalive"):
            assert said == b""  # nothing was asked, nothing is answered
        else:
            assert said.startswith(b"HTTP/1.1 408 "), said
    assert time.monotonic() - opened >= REQUEST_READ_SECONDS - 1.0, "dropped before the deadline"
    assert_commands_answered(started.slack, count=2)  # and after they are gone
    assert "Traceback" not in started.bot.log_text()


def signed_help(world: World, slack: SlackDriver) -> tuple[bytes, dict[str, str]]:
    form = {
        "team_id": slack.team_id,
        "channel_id": OPS,
        "user_id": ALICE,
        "user_name": "alice",
        "command": "/snapshot",
        "text": "help",
        "api_app_id": slack.api_app_id,
        "response_url": world.slack.new_response_url(channel=OPS, user_id=ALICE),
        "trigger_id": slack.new_trigger_id(),
    }
    body = urlencode(form).encode()
    return body, slack.sign(body)


def raw_request(body: bytes, headers: dict[str, str], extra: str = "") -> tuple[bytes, bytes]:
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + extra + "\r\n"
    )
    return head.encode(), body


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def read_answer(sock: socket.socket, timeout: float = 10.0, *, interim: bool = False) -> bytes:
    """The head of the next answer; interim `100 Continue` answers are skipped unless `interim`."""
    sock.settimeout(timeout)
    data = b""
    while True:
        while not interim and data.startswith(CONTINUE):
            data = data[len(CONTINUE) :]  # gunicorn may say it again when the app reads the body
        if b"\r\n\r\n" in data:
            return data
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_a_slow_client_that_finishes_in_time_is_served(started: Started) -> None:
    bot, slack = started.bot, started.slack
    head, body = raw_request(*signed_help(started.world, slack))
    with socket.create_connection(("127.0.0.1", port_of(bot.url))) as sock:
        for piece in (head[:20], head[20:], body[:10], body[10:]):
            sock.sendall(piece)
            time.sleep(0.3)  # a client trickling its request: the pauses are the point, not a wait for a result
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_expect_100_continue_is_answered_before_the_body(started: Started) -> None:
    bot, slack = started.bot, started.slack
    head, body = raw_request(*signed_help(started.world, slack), extra="Expect: 100-continue\r\n")
    with socket.create_connection(("127.0.0.1", port_of(bot.url))) as sock:
        sock.sendall(head)
        assert read_answer(sock, interim=True).startswith(CONTINUE), "no 100 Continue before the body"
        sock.sendall(body)
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Content-Length: 2000000\r\n", b"413"),  # over the body limit: refused unread
        ("Transfer-Encoding: chunked\r\n", b"411"),  # Slack always sends a length
        ("X-Filler: " + "a" * 70_000 + "\r\n", b"431"),
    ],
)
def test_what_cannot_be_buffered_is_refused_at_once(started: Started, headers: str, status: bytes) -> None:
    bot = started.bot
    with socket.create_connection(("127.0.0.1", port_of(bot.url))) as sock:
        sock.sendall(f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        started = time.monotonic()
        closed, said = closed_by_server(sock, within=DROP_WITHIN)
    assert closed and said.startswith(b"HTTP/1.1 " + status), said
    assert time.monotonic() - started < REQUEST_READ_SECONDS, "refused only at the deadline"


def test_slow_clients_on_the_metrics_port_block_neither_scrapes_nor_acks(server: Server) -> None:  # noqa: F811
    """METRICS_PORT under `serve` (two workers): 100 connections left mid-request there; scrapes and commands
    are answered as usual, and each slow connection is answered 408 and closed at the read deadline."""
    metrics_port = port_of(server.metrics_url.removesuffix("/metrics"))
    slow = [open_slow(metrics_port, kind) for kind in ("headers", "silent") for _ in range(50)]
    opened = time.monotonic()
    try:
        for _ in range(3):
            started = time.monotonic()
            text, _samples = scrape(server.metrics_url)
            assert "snapshot_bot_" in text
            assert time.monotonic() - started < ACK_LIMIT
        assert_commands_answered(server.driver)
        for n, sock in enumerate(slow):
            closed, said = closed_by_server(sock, within=max(0.1, opened + DROP_WITHIN - time.monotonic()))
            assert closed, f"slow metrics connection {n} still open {DROP_WITHIN:.0f} s after it was opened"
            assert said.startswith(b"HTTP/1.1 408 "), said
    finally:
        for sock in slow:
            sock.close()
