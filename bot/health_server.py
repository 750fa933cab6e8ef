"""The small HTTP server of Socket Mode on HEALTH_PORT: `/livez`, `/readyz`, `/healthz` (and `/metrics` when
METRICS_PORT is the same port, so one port serves both).

Rules this module keeps: it is the METRICS_PORT listener (bot/small_http_server.py: asyncio, GET and HEAD only, a
read deadline, so a slow or half-sent client costs no thread), and it answers a probe exactly as the HTTP mode's
WSGI app does (`bot.slack.wsgi.probe_response`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from bot.slack.wsgi import ReadyVerdict, probe_response
from bot.small_http_server import Route, SmallHttpServer, metrics_route

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

PROBE_PATHS = ("/livez", "/readyz", "/healthz")


def _probe_route(path: str, ready: Callable[[], ReadyVerdict]) -> Route:
    def render(_headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        # GET's answer; the server drops the body for HEAD itself.
        answer = probe_response(path, "GET", ready)
        assert answer is not None  # every path routed here is a probe path
        status, headers, body = answer
        return int(status.split()[0]), dict(headers)["Content-Type"], body

    return render


def start_health_server(
    port: int, host: str, ready: Callable[[], ReadyVerdict], metrics: CollectorRegistry | None = None
) -> SmallHttpServer:
    """Serve the probes (and `metrics`, if given, on `/metrics`) on `host`:`port` until `shutdown()`."""
    routes: dict[str, Route] = {path: _probe_route(path, ready) for path in PROBE_PATHS}
    if metrics is not None:
        routes["/metrics"] = metrics_route(metrics)
    return SmallHttpServer(host, port, routes).start()
