"""The one threaded WSGI server of the dev tools, for loopback use: the fake Slack, the VPS.org simulator, tests
and the local shell run on it.

Built on the stdlib `wsgiref` so dev tools need no extra dependency. The stock `wsgiref` server handles one
request at a time and writes an access-log line per request to stderr; both are wrong for tests that fire
dozens of concurrent requests, so this module adds a thread per connection and silences the access log.
"""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

# The listen backlog. The stdlib default (5) makes a burst of 50+ simultaneous connections see resets.
_LISTEN_BACKLOG = 256
# How often serve_forever() checks for shutdown; small so stop() returns promptly.
_POLL_INTERVAL = 0.05


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hung handler must never keep the test process alive
    request_queue_size = _LISTEN_BACKLOG
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        # No access log: request lines may carry query strings, and the noise drowns test output.
        return


class RunningServer:
    """A WSGI app being served on a background thread. Use `stop()` or a `with` block to shut it down."""

    def __init__(self, server: ThreadingWSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._stopped = False
        host, port = server.server_address[:2]
        self.host: str = str(host)
        self.port: int = int(port)
        self.url: str = f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningServer(url={self.url!r})"


def make_threaded_server(
    app: WSGIApplication,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    handler_class: type[WSGIRequestHandler] = _QuietHandler,
) -> ThreadingWSGIServer:
    """A listening (not yet serving) threaded server for `app`; `handler_class` may replace the quiet handler."""
    return make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=handler_class)


def start_wsgi_in_thread(
    app: WSGIApplication,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    handler_class: type[WSGIRequestHandler] = _QuietHandler,
) -> RunningServer:
    """Serve `app` on `host:port` (port 0: an ephemeral one) from a daemon thread; returns once listening."""
    server = make_threaded_server(app, host, port, handler_class=handler_class)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": _POLL_INTERVAL},
        name=f"wsgi-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return RunningServer(server, thread)
