"""How the Slack driver's bytes reach the app: a `Sender` delivers one request (path, headers, body) and returns
a `DriverResponse`. `http_sender` POSTs over loopback HTTP (one pooled client, no redirects, no proxies);
`wsgi_sender` calls a WSGI app in-process with the same bytes and headers, which keeps tests fast and lets
benchmarks measure the app without the network.
"""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication


@dataclass
class DriverResponse:
    """What the app answered: HTTP status, body text, headers (lower-case names) and wall time taken."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0

    def json(self) -> Any:
        if not self.body:
            raise ValueError(f"response has an empty body (status {self.status}); nothing to decode as JSON")
        return json.loads(self.body)


class Sender(Protocol):
    """Delivers one request: (path, headers, body) -> response."""

    def __call__(self, path: str, headers: dict[str, str], body: bytes, /) -> DriverResponse: ...


class _HttpSender:
    def __init__(self, base_url: str, timeout: float) -> None:
        self._base_url = base_url.rstrip("/")
        # One pooled client, shared by all threads (httpx.Client is thread-safe); never follows redirects so
        # a misrouted request shows up as the 3xx it is; ignores proxy env vars so loopback stays loopback.
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def __call__(self, path: str, headers: dict[str, str], body: bytes, /) -> DriverResponse:
        started = time.perf_counter()
        response = self._client.post(self._base_url + path, content=body, headers=headers)
        return DriverResponse(
            status=response.status_code,
            body=response.text,
            headers={k.lower(): v for k, v in response.headers.items()},
            elapsed=time.perf_counter() - started,
        )

    def close(self) -> None:
        self._client.close()


def http_sender(base_url: str, timeout: float = 10.0) -> Sender:
    """A Sender that POSTs over HTTP to `base_url` + path (the driver uses "/slack/events").

    The returned object also has `close()` to release its connection pool.
    """
    return _HttpSender(base_url, timeout)


def wsgi_sender(app: WSGIApplication) -> Sender:
    """A Sender that calls the WSGI `app` in-process: no sockets, same bytes and headers."""

    def send(path: str, headers: dict[str, str], body: bytes, /) -> DriverResponse:
        path_only, _, query = path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": path_only,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ[f"HTTP_{key}"] = value

        captured: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = {k.lower(): v for k, v in response_headers}
            return lambda data: None

        started = time.perf_counter()
        chunks = app(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return DriverResponse(
            status=captured["status"],
            body=payload.decode("utf-8", errors="replace"),
            headers=captured["headers"],
            elapsed=time.perf_counter() - started,
        )

    return send
