"""The small HTTP server of Socket Mode on HEALTH_PORT: `/livez`, `/readyz`, `/healthz` (and `/metrics` when
METRICS_PORT is the same port, so one port serves both).

Rules this module keeps: it answers GET and HEAD on those paths only (404 otherwise), runs in daemon threads,
and answers a probe exactly as the HTTP mode's WSGI app does (`bot.slack.wsgi.probe_response`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from bot.slack.wsgi import ReadyVerdict, probe_response

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)


def start_health_server(
    port: int, host: str, ready: Callable[[], ReadyVerdict], metrics: CollectorRegistry | None = None
) -> ThreadingHTTPServer:
    """Serve the probes (and `metrics`, if given, on `/metrics`) on `host`:`port` until `shutdown()`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer("GET")

        def do_HEAD(self) -> None:
            self._answer("HEAD")

        def _answer(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            probe = probe_response(path, method, ready)
            if probe is None and path == "/metrics" and metrics is not None:
                from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

                body = generate_latest(metrics)
                headers = [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))]
                probe = ("200 OK", headers, b"" if method == "HEAD" else body)
            if probe is None:
                body = b"not found\n"
                probe = ("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], body)
            status, headers, body = probe
            self.send_response(int(status.split()[0]), status.split(" ", 1)[1])
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # probes every few seconds: not worth a line
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-server", daemon=True).start()
    return server
