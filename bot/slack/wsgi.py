"""The HTTP face of the bot: `POST /slack/events` for Slack; `GET /livez`, `/readyz` (and `/healthz`, its alias)
for load balancers and Kubernetes (what each means: bot/readiness.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from slack_bolt import App

from bot.slack.middleware import SafeSlackRequestHandler

MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller; refuse anything bigger before parsing
LIVE_BODY = b"live\n"


class ReadyVerdict(Protocol):
    @property
    def ready(self) -> bool: ...

    def body(self) -> bytes: ...


def probe_response(
    path: str, method: str, ready: Callable[[], ReadyVerdict]
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """(status, headers, body) for a probe path, or None when `path` is not a probe. HEAD gets no body."""
    if method not in ("GET", "HEAD") or path not in ("/livez", "/readyz", "/healthz"):
        return None
    if path == "/livez":
        status, body = "200 OK", LIVE_BODY  # serving this is the whole check: no database, no Slack
    else:
        verdict = ready()
        status, body = ("200 OK" if verdict.ready else "503 Service Unavailable"), verdict.body()
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
    return status, headers, (b"" if method == "HEAD" else body)


def create_wsgi_app(app: App, ready: Callable[[], ReadyVerdict]) -> Any:
    # It refuses bodies over MAX_BODY_BYTES unread (401: what isn't read can't be verified).
    slack = SafeSlackRequestHandler(app, path="/slack/events", max_body_bytes=MAX_BODY_BYTES)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        probe = probe_response(path, method, ready)
        if probe is not None:
            status, headers, body = probe
            start_response(status, headers)
            return [body]
        if path == "/slack/events" and method == "POST":
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return wsgi
