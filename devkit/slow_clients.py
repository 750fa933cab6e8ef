"""Clients that open a connection and never finish their request: what issue 24 §1 silenced `serve` with.

Kinds: `headers` (half of a request's headers), `body` (the full headers of a signed-looking POST /slack/events
with Content-Length 1000, a current timestamp and one byte of body), `silent` (connects, sends nothing), and
`keepalive` (a whole GET answered on a kept-alive connection, then half of a second request) and `idle-keepalive`
(the same, then nothing). `hold()` keeps them
open and opens them again when the server drops them, as an attacker would; run as a module it does that from a
process of its own (the benchmark's load must not share the measuring process):

    python -m devkit.slow_clients --port 8000 --count 500 --kind body

and prints `holding N` once they are all open, then one line a second with the number held and reopened.
Loopback only: the address is always 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import selectors
import socket
import sys
import threading
import time

KINDS = ("headers", "body", "silent", "keepalive", "idle-keepalive")


def _half_headers() -> bytes:
    return b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlen"


def _half_body() -> bytes:
    return (
        "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n"
        f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0={'0' * 64}\r\n\r\nt"
    ).encode()


def open_slow(port: int, kind: str, timeout: float = 10.0) -> socket.socket:
    """One connection to 127.0.0.1:`port` left mid-request (see the module docstring for `kind`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if kind == "headers":
        sock.sendall(_half_headers())
    elif kind == "body":
        sock.sendall(_half_body())
    elif kind in ("keepalive", "idle-keepalive"):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        _read_one_answer(sock)
        if kind == "keepalive":
            sock.sendall(_half_headers())
    return sock


def _read_one_answer(sock: socket.socket) -> bytes:
    """The head of one answer and its Content-Length body (enough for a small probe's answer)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return data


def closed_by_server(sock: socket.socket, within: float) -> tuple[bool, bytes]:
    """Wait up to `within` seconds for the server to close `sock`: (closed, what it sent before closing)."""
    sock.settimeout(within)
    received = b""
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk:
                return True, received
            received += chunk
    except TimeoutError:
        return False, received
    except OSError:  # reset: closed too
        return True, received
    return False, received


class Holder:
    """`count` slow connections of one kind, reopened when the server drops them, until `stop()`."""

    def __init__(self, port: int, kind: str, count: int) -> None:
        self.port, self.kind, self.count = port, kind, count
        self.held = 0
        self.reopened = 0
        self.failed_opens = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def start(self, ready_within: float = 60.0) -> Holder:
        self._thread.start()
        deadline = time.monotonic() + ready_within
        while self.held < self.count:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError(f"only {self.held} of {self.count} slow connections opened")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _open(self, selector: selectors.BaseSelector) -> None:
        try:
            sock = open_slow(self.port, self.kind)
        except OSError:
            self.failed_opens += 1
            time.sleep(0.01)
            return
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        self.held += 1

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            while not self._stop.is_set():
                while self.held < self.count and not self._stop.is_set():
                    self._open(selector)
                for key, _ in selector.select(timeout=0.2):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    with contextlib.suppress(OSError):
                        if sock.recv(4096):
                            continue  # an answer (408): the close follows
                    selector.unregister(sock)
                    sock.close()
                    self.held -= 1
                    self.reopened += 1
            for key in list(selector.get_map().values()):
                with contextlib.suppress(OSError):
                    key.fileobj.close()  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.slow_clients", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--kind", choices=KINDS, default="body")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, args.count * 2 + 64))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    holder = Holder(args.port, args.kind, args.count).start()
    print(f"holding {holder.held}", flush=True)
    try:
        while True:
            line = f"held {holder.held} reopened {holder.reopened} failed {holder.failed_opens}"
            print(line, flush=True)
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        holder.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
