"""Slack's side of Socket Mode, faked on loopback, so `python -m bot socket` can be tested end to end.

The protocol, as Slack documents it, and what this fake holds to:
- The app calls `apps.connections.open` with its app-level token; `FakeSlack` answers it with a URL minted
  here (`ws://127.0.0.1:PORT/link/?ticket=…&app_id=…`). Each URL admits one connection: a reconnect has to ask
  `apps.connections.open` again, and a reused or made-up ticket is refused at the handshake (403).
- On connect the server sends `{"type": "hello", …}`; only then is the connection used for envelopes.
- Envelopes are `{"envelope_id", "type": "slash_commands" | "interactive" | "events_api", "payload",
  "accepts_response_payload"}`, sent on the newest connection. The app acknowledges each with
  `{"envelope_id": …}`, optionally with a `payload` where the envelope accepts one: the ack is what the HTTP 200
  and its body are in HTTP mode. Every ack is recorded with the connection it came on; anything else the app
  sends is kept in `unexpected`.
- `request_refresh()` sends `{"type": "disconnect", "reason": "refresh_requested"}`, as Slack does before it
  recycles a connection, and waits for the app to open a new one (through `apps.connections.open`) and close
  the old one.

`socket_mode_sender(fake)` is a `Sender` for `SlackDriver`: the driver builds exactly the payloads it sends over
HTTP, and the sender re-packs them as envelopes (no signature: the WebSocket is authenticated by the app-level
token instead), waits for the ack, and returns it as the response. All waits have deadlines. Loopback only.

This module needs the `websockets` package (a dev dependency); nothing in the production bot imports it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from devkit.fake_slack import FakeSlack
from devkit.slack_driver import DriverResponse, Sender

SLASH_COMMANDS = "slash_commands"
INTERACTIVE = "interactive"
EVENTS_API = "events_api"
# Interactions whose ack may carry an answer (errors, response_action, options); clicks are only acknowledged.
_INTERACTIONS_WITH_RESPONSE = frozenset({"view_submission", "block_suggestion"})
_HOST = "127.0.0.1"
_LINK_PATH = "/link/"


@dataclass(frozen=True)
class Envelope:
    """One envelope the server sent, and on which connection (1 = the first the app opened)."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    connection: int


@dataclass(frozen=True)
class Ack:
    """The app's acknowledgement of one envelope: its `payload` (if any) and the connection it came on."""

    envelope_id: str
    payload: dict[str, Any] | None
    connection: int


@dataclass
class Connection:
    """One WebSocket the app opened; `closed` once either side has ended it."""

    number: int
    ticket: str
    socket: ServerConnection = field(repr=False)
    closed: bool = False


class FakeSocketMode:
    """A Socket Mode server on 127.0.0.1 for one `FakeSlack`. Thread-safe; use as a context manager or start/stop."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self._lock = threading.Condition()
        self._tickets: set[str] = set()  # issued and not used yet
        self._connections: list[Connection] = []
        self._envelopes: list[Envelope] = []
        self._acks: dict[str, list[Ack]] = {}
        self.unexpected: list[str] = []  # messages from the app that are neither acks nor empty
        self.refused: list[str] = []  # handshake paths refused (unknown or reused ticket)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> FakeSocketMode:
        if self._server is None:
            # No server-side pings (the client pings, and is answered); no compression, as the slack_sdk client
            # offers none. Small close timeout so stop() never hangs on an app that died mid-close.
            self._server = serve(
                self._serve_connection,
                _HOST,
                0,
                process_request=self._admit,
                ping_interval=None,
                compression=None,
                close_timeout=1,
            )
            self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)
            self._thread.start()
            self.slack.attach_socket_mode(self.issue_url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.slack.attach_socket_mode(None)
        with self._lock:
            sockets = [c.socket for c in self._connections if not c.closed]
        for socket in sockets:
            socket.close()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSocketMode is not started")
        return int(self._server.socket.getsockname()[1])

    def issue_url(self) -> str:
        """A fresh single-use WebSocket URL: what `apps.connections.open` answers."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://{_HOST}:{self.port}{_LINK_PATH}?ticket={ticket}&app_id={self.slack.api_app_id}"

    # -- the server side of each connection ------------------------------------------------------------------

    def _admit(self, socket: ServerConnection, request: Request) -> Response | None:
        """The handshake: only a path of ours with a ticket issued by apps.connections.open and not used yet."""
        parts = urlsplit(request.path)
        ticket = (parse_qs(parts.query).get("ticket") or [""])[0]
        with self._lock:
            if parts.path == _LINK_PATH and ticket in self._tickets:
                self._tickets.discard(ticket)
                return None
            self.refused.append(request.path)
        return socket.respond(HTTPStatus.FORBIDDEN, "unknown or used ticket\n")

    def _serve_connection(self, socket: ServerConnection) -> None:
        ticket = (parse_qs(urlsplit(socket.request.path if socket.request else "").query).get("ticket") or [""])[0]
        with self._lock:
            connection = Connection(len(self._connections) + 1, ticket, socket)
            open_count = sum(1 for c in self._connections if not c.closed) + 1
        hello = {
            "type": "hello",
            "num_connections": open_count,
            "debug_info": {"host": "fake-socket-mode", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.slack.api_app_id},
        }
        try:
            socket.send(json.dumps(hello))
            with self._lock:  # usable for envelopes only once the hello is out
                self._connections.append(connection)
                self._lock.notify_all()
            for message in socket:
                self._receive(connection, message)
        except ConnectionClosed:
            pass  # the slack_sdk client drops the TCP connection without a close frame when it replaces one
        finally:
            with self._lock:
                connection.closed = True
                self._lock.notify_all()

    def _receive(self, connection: Connection, message: str | bytes) -> None:
        text = message.decode("utf-8", errors="replace") if isinstance(message, bytes) else message
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError:
            decoded = None
        with self._lock:
            if isinstance(decoded, dict) and isinstance(decoded.get("envelope_id"), str):
                payload = decoded.get("payload")
                ack = Ack(decoded["envelope_id"], payload if isinstance(payload, dict) else None, connection.number)
                self._acks.setdefault(ack.envelope_id, []).append(ack)
                self._lock.notify_all()
            else:
                self.unexpected.append(text)

    # -- what a test does ------------------------------------------------------------------------------------

    def wait_for_connection(self, number: int = 1, timeout: float = 30.0) -> Connection:
        """Block until the app's `number`-th connection has been greeted; AssertionError at the deadline."""
        return self._wait(
            lambda: self._connections[number - 1] if len(self._connections) >= number else None,
            timeout,
            lambda: f"connection #{number} (have {len(self._connections)}; refused {self.refused})",
        )

    def send(self, envelope_type: str, payload: dict[str, Any], *, accepts_response_payload: bool = False) -> Envelope:
        """Send one envelope on the newest open connection; returns it (with its envelope_id)."""
        with self._lock:
            current = self._current()
            if current is None:
                raise AssertionError("no open Socket Mode connection to send on")
            envelope = Envelope(str(uuid.uuid4()), envelope_type, payload, accepts_response_payload, current.number)
            self._envelopes.append(envelope)
        current.socket.send(
            json.dumps(
                {
                    "envelope_id": envelope.envelope_id,
                    "type": envelope.type,
                    "payload": envelope.payload,
                    "accepts_response_payload": envelope.accepts_response_payload,
                    **({"retry_attempt": 0, "retry_reason": ""} if envelope_type == EVENTS_API else {}),
                }
            )
        )
        return envelope

    def wait_for_ack(self, envelope_id: str, timeout: float = 30.0) -> Ack:
        """The app's ack of `envelope_id`; AssertionError if none arrives before the deadline."""
        return self._wait(
            lambda: (self._acks.get(envelope_id) or [None])[0], timeout, lambda: f"the ack of envelope {envelope_id}"
        )

    def request_refresh(self, timeout: float = 30.0) -> Connection:
        """Ask the app to reconnect, as Slack does before recycling a connection; returns the new connection once
        the app has opened it and closed the old one."""
        with self._lock:
            old = self._current()
            if old is None:
                raise AssertionError("no open Socket Mode connection to refresh")
        disconnect = {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "fake-socket-mode"}}
        old.socket.send(json.dumps(disconnect))
        new = self.wait_for_connection(old.number + 1, timeout)
        self._wait(lambda: old.closed, timeout, lambda: f"the app to close connection #{old.number}")
        return new

    @property
    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._connections)

    @property
    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return list(self._envelopes)

    def acks_of(self, envelope_id: str) -> list[Ack]:
        with self._lock:
            return list(self._acks.get(envelope_id, []))

    def _current(self) -> Connection | None:
        return next((c for c in reversed(self._connections) if not c.closed), None)

    def _wait(self, found: Callable[[], Any], timeout: float, what: Callable[[], str]) -> Any:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = found()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what()}")
                self._lock.wait(remaining)


def socket_mode_sender(server: FakeSocketMode, *, ack_timeout: float = 30.0) -> Sender:
    """A `SlackDriver` Sender that delivers each request as a Socket Mode envelope and answers with its ack.

    Form-encoded slash commands become `slash_commands` (their fields as the payload), `payload=` interactions
    become `interactive`, Events API JSON becomes `events_api`. The response is 200 with the ack's payload as
    JSON (empty when the ack carried none).
    """

    def send(path: str, headers: dict[str, str], body: bytes, /) -> DriverResponse:
        envelope_type, payload, accepts = _as_envelope(headers, body)
        started = time.perf_counter()
        envelope = server.send(envelope_type, payload, accepts_response_payload=accepts)
        ack = server.wait_for_ack(envelope.envelope_id, timeout=ack_timeout)
        return DriverResponse(
            status=200,
            body=json.dumps(ack.payload) if ack.payload is not None else "",
            headers={"content-type": "application/json"} if ack.payload is not None else {},
            elapsed=time.perf_counter() - started,
        )

    return send


def _as_envelope(headers: dict[str, str], body: bytes) -> tuple[str, dict[str, Any], bool]:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    text = body.decode("utf-8")
    if content_type.startswith("application/json"):
        return EVENTS_API, json.loads(text), False
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        payload = json.loads(form["payload"])
        return INTERACTIVE, payload, payload.get("type") in _INTERACTIONS_WITH_RESPONSE
    return SLASH_COMMANDS, form, True
