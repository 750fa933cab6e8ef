"""The HTTP face of the bot: `POST /slack/events` for Slack, `GET /healthz` for load balancers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slack_bolt import App

from bot.runtime import Core
from bot.slack.middleware import SafeSlackRequestHandler

MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller; refuse anything bigger before parsing


def create_wsgi_app(app: App, core: Core) -> Any:
    # It refuses bodies over MAX_BODY_BYTES unread (401: what isn't read can't be verified).
    slack = SafeSlackRequestHandler(app, path="/slack/events", max_body_bytes=MAX_BODY_BYTES)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in ("GET", "HEAD"):
            healthy = core.healthy()
            status = "200 OK" if healthy else "503 Service Unavailable"
            body = b"ok\n" if healthy else b"database unavailable\n"
            start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/slack/events" and method == "POST":
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return wsgi
