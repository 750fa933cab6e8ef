"""gunicorn's threaded worker, with every request read whole by the event loop before a thread is given to it.

gunicorn's gthread worker hands each new connection to a thread that reads the request's headers and body with
blocking reads and no deadline: ~33 clients that send half a request and stop held every thread of `serve`
(issue 24 §1). Here the worker's own event loop (its selector, which already waits on kept-alive connections)
reads each request without blocking, and only a complete request (headers and the whole Content-Length body) is
handed to a thread, to gunicorn's parser, from memory. Measured with 500 half-sent connections held open against
2 × 16 threads: acks stay at their usual times (BENCHMARKS.md, row 1c); with socket timeouts alone every thread
would wait out a timeout per slow connection, and the acks queue behind them.

Rules this module keeps:
- A request whose headers and body have not all arrived `REQUEST_READ_SECONDS` after its first chance to be read
  (accepted, or its kept-alive connection readable again) is answered 408 (or closed, if nothing came) and its
  connection closed. A connection that never sends is closed at the same deadline.
- No thread reads from a client socket it has to wait on: a read past what was buffered (a request this module
  judged complete and gunicorn's parser did not) waits at most `REQUEST_READ_SECONDS`.
- Bounded: a body over `MAX_REQUEST_BYTES` is refused (413) unread; headers over `MAX_HEADER_BYTES` (431); a body
  sent chunked (411: Slack always sends a length); and the bytes held for unfinished requests in one worker stay
  under `BUFFERED_BYTES_LIMIT` (503 to the request that would exceed it). Kept-alive idle connections are closed
  after gunicorn's `keepalive` seconds, and a worker holds at most `worker_connections`.
- `Expect: 100-continue` is answered as soon as the headers are in, so such a client sends its body at once.
Requires gunicorn 27's gthread worker (its `enqueue_req` / `murder_pending` / `_cap_keepalive` seams).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import ThreadWorker

REQUEST_READ_SECONDS = 5.0  # Slack gives up after 3 s: a request slower than this to arrive is no longer wanted
MAX_REQUEST_BYTES = 1_000_000  # the body limit of bot/slack/wsgi.py (MAX_BODY_BYTES), enforced before buffering
MAX_HEADER_BYTES = 64 * 1024
BUFFERED_BYTES_LIMIT = 64 * 1024 * 1024  # per worker, over every request still arriving
RECV_BYTES = 64 * 1024

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Incomplete:
    expects_continue: bool = False


@dataclass(frozen=True)
class Complete:
    pass


@dataclass(frozen=True)
class Refused:
    status: int


def request_extent(
    buffered: bytes | bytearray, max_body: int = MAX_REQUEST_BYTES, search_from: int = 0
) -> Incomplete | Complete | Refused:
    """Whether `buffered` holds one whole HTTP/1.x request, judged from its headers only.

    Headers gunicorn will reject anyway (a malformed or repeated Content-Length) count as complete: its parser
    answers 400 from the headers alone, without reading a body. `search_from`: where the end of the headers may
    start (what was searched before), so a client trickling its headers a byte at a time costs no rescans.
    """
    end = buffered.find(b"\r\n\r\n", max(0, search_from))
    if end < 0:
        return Refused(431) if len(buffered) > MAX_HEADER_BYTES else Incomplete()
    if end > MAX_HEADER_BYTES:
        return Refused(431)
    lengths: list[bytes] = []
    expects_continue = False
    for line in bytes(buffered[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            return Refused(411)
        elif name == b"expect":
            expects_continue = value.lower() == b"100-continue"
    if len(lengths) != 1 or not lengths[0].isdigit() or not lengths[0].isascii():
        return Complete()  # no body (or one gunicorn refuses from the headers)
    if len(lengths[0]) > 12 or int(lengths[0]) > max_body:
        return Refused(413)
    if len(buffered) >= end + 4 + int(lengths[0]):
        return Complete()
    return Incomplete(expects_continue)


def refusal(status: int) -> bytes:
    return f"HTTP/1.1 {status} {_REASONS[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode()


class DeadlineUnreader(SocketUnreader):  # type: ignore[misc]
    """gunicorn's socket reader for one connection, whose reads from the socket never wait past the deadline."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        super().__init__(sock)
        self.seconds = seconds

    def chunk(self, size_hint: int | None = None) -> bytes:
        before = self.sock.gettimeout()
        self.sock.settimeout(self.seconds if before is None else min(before, self.seconds))
        try:
            return bytes(super().chunk(size_hint))
        finally:
            self.sock.settimeout(before)


@dataclass
class _Arriving:
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    continued: bool = False
    searched: int = 0  # bytes known to hold no end of headers


class BufferingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, with requests read whole by the event loop (see the module docstring)."""

    def init_process(self) -> None:
        self.arriving: dict[Any, _Arriving] = {}  # insertion order is deadline order
        self.buffered_bytes = 0
        super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: tell the app at once (it stops its background rounds before gunicorn lets requests finish)."""
        super().handle_exit(sig, frame)
        stopping = getattr(self.app, "worker_stopping", None)
        if stopping is not None:
            stopping()

    def enqueue_req(self, conn: Any) -> None:
        if getattr(conn, "request_buffered", False) or self.cfg.is_ssl:
            conn.request_buffered = False
            super().enqueue_req(conn)
            return
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.sock.setblocking(False)
        arriving = _Arriving(time.monotonic() + REQUEST_READ_SECONDS, bytearray(leftover))
        self.buffered_bytes += len(leftover)
        self.arriving[conn] = arriving
        if not self._advance(conn, arriving):
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        arriving = self.arriving.get(conn)
        if arriving is None:
            return
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:  # the client went away
            self._drop(conn)
            return
        if self.buffered_bytes + len(data) > BUFFERED_BYTES_LIMIT:
            self._drop(conn, refusal(503))
            return
        arriving.data += data
        self.buffered_bytes += len(data)
        self._advance(conn, arriving)

    def _advance(self, conn: Any, arriving: _Arriving) -> bool:
        """Hand the request on or refuse it once that can be decided; True when the connection left this stage."""
        extent = request_extent(arriving.data, search_from=arriving.searched - 3)
        if arriving.data.find(b"\r\n\r\n", max(0, arriving.searched - 3)) < 0:
            arriving.searched = len(arriving.data)
        if isinstance(extent, Incomplete):
            if extent.expects_continue and not arriving.continued:
                arriving.continued = True
                self._send_quietly(conn, _CONTINUE)
            return False
        if isinstance(extent, Refused):
            self._drop(conn, refusal(extent.status))
            return True
        self._leave(conn)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.parser.unreader = DeadlineUnreader(conn.sock, REQUEST_READ_SECONDS)
        conn.parser.unreader.unread(bytes(arriving.data))
        conn.data_ready = True  # gunicorn must not wait on the socket for what is already here
        conn.request_buffered = True
        self.enqueue_req(conn)
        return True

    def _leave(self, conn: Any) -> None:
        arriving = self.arriving.pop(conn, None)
        if arriving is not None:
            self.buffered_bytes -= len(arriving.data)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _drop(self, conn: Any, answer: bytes = b"") -> None:
        self._leave(conn)
        if answer:
            self._send_quietly(conn, answer)
        self.nr_conns -= 1
        conn.close()

    @staticmethod
    def _send_quietly(conn: Any, data: bytes) -> None:
        """A short answer on a non-blocking socket: sent if it fits the socket's buffer, dropped otherwise."""
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, arriving in list(self.arriving.items()):
            if arriving.deadline > now:
                break
            self._drop(conn, refusal(408) if arriving.data else b"")

    def _cap_keepalive(self, deadline: float) -> None:
        """Stopping: requests still arriving get as long as kept-alive connections, not their whole deadline."""
        super()._cap_keepalive(deadline)
        for arriving in self.arriving.values():
            arriving.deadline = min(arriving.deadline, deadline)
