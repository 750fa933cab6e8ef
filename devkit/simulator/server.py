"""Serving the simulator over loopback HTTP (the local shell, `python -m bot simulate-vps`, benchmarks), on the
dev tools' one threaded WSGI server with a handler that can drop a connection without answering.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any
from wsgiref.handlers import SimpleHandler
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler

from devkit.simulator.account import API_PREFIX, DEFAULT_TOKEN
from devkit.simulator.app import VpsSimulator
from devkit.simulator.faults import DroppedConnection
from devkit.wsgi_server import ThreadingWSGIServer, make_threaded_server, start_wsgi_in_thread

logger = logging.getLogger(__name__)


class _Handler(ServerHandler):
    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], DroppedConnection):
            return  # write nothing: the socket is closed when the request ends, as a crashed upstream would
        super().handle_error()


class _RequestHandler(WSGIRequestHandler):
    def handle(self) -> None:
        # As WSGIRequestHandler.handle, but with a ServerHandler that can drop a connection on purpose.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler: SimpleHandler = _Handler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's back-pointer for logging
        handler.run(self.server.get_app())  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("vps simulator: " + format, *args)


def make_server(sim: VpsSimulator, host: str = "127.0.0.1", port: int = 0) -> ThreadingWSGIServer:
    """A listening (not yet serving) server for `sim`; the caller runs `serve_forever` and shuts it down."""
    return make_threaded_server(sim, host, port, handler_class=_RequestHandler)


def start_in_thread(sim: VpsSimulator, host: str = "127.0.0.1", port: int = 0) -> tuple[str, Callable[[], None]]:
    """Serve `sim` in a daemon thread. Returns (base URL like "http://127.0.0.1:PORT/api/v1/", stop)."""
    running = start_wsgi_in_thread(sim, host, port, handler_class=_RequestHandler)
    return f"{running.url}{API_PREFIX}", running.stop


def serve(host: str = "127.0.0.1", port: int = 8089, token: str = DEFAULT_TOKEN, completion_delay: float = 5.0) -> None:
    """Serve a seeded simulator until interrupted (`python -m bot simulate-vps`)."""
    sim = VpsSimulator(token, completion_delay=completion_delay)
    with make_server(sim, host, port) as server:
        bound_host, bound_port = server.server_address[:2]
        logger.info("VPS.org simulator on http://%s:%s%s", bound_host, bound_port, API_PREFIX)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
