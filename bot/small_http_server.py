"""A small GET-only HTTP server on a port of its own (METRICS_PORT): one asyncio loop in one daemon thread.

prometheus_client's own server gives every connection a thread and reads it with no deadline, so each client that
sends half a request keeps a thread (in gunicorn's master, for `serve`) for as long as it likes (issue 24 §1).
Here a waiting client costs a socket and a few hundred bytes, never a thread.

Rules this module keeps:
- A request's headers must arrive within `READ_SECONDS` of the connection (else 408 and close), be at most
  `MAX_HEAD_BYTES` (else 431), and be GET or HEAD (else 405); a request body is not read.
- An answer is rendered by its route in a small thread pool (a scrape reads every worker's files) and must be
  taken by the client within `WRITE_SECONDS`; then the connection closes (`Connection: close`: one request each).
- At most `MAX_CONNECTIONS` at once; beyond that a new connection is closed at once.
- Routes never see the socket: they get the request's headers and return (status, content type, body).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

READ_SECONDS = 5.0
WRITE_SECONDS = 10.0
MAX_HEAD_BYTES = 16 * 1024
MAX_CONNECTIONS = 1000
RENDER_THREADS = 2

Route = Callable[[Mapping[str, str]], tuple[int, str, bytes]]
_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Too Large",
    503: "Service Unavailable",
}


def _answer(status: int, content_type: str, body: bytes, *, head_only: bool = False) -> bytes:
    reason = _REASONS.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + (b"" if head_only else body)


def _plain(status: int) -> bytes:
    return _answer(status, "text/plain; charset=utf-8", f"{_REASONS.get(status, 'Error')}\n".encode())


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]


def _parse_head(head: bytes) -> _Request | None:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return _Request(parts[0], parts[1].split("?", 1)[0], headers)


class SmallHttpServer:
    """Serves `routes` (path → Route) on `host`:`port` until `shutdown()`; started by `start()`."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Route]) -> None:
        self.host, self.port, self.routes = host, port, dict(routes)
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._renderers = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="small-http")
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"http-{port}", daemon=True)

    def start(self) -> SmallHttpServer:
        """Bind (an error such as the port being taken is raised here) and serve in a daemon thread."""
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, self.host, self.port, limit=MAX_HEAD_BYTES)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread.start()
        return self

    def shutdown(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._renderers.shutdown(wait=False)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= MAX_CONNECTIONS:
            writer.close()
            return
        self.connections += 1
        try:
            answer = await self._answer_for(reader)
            if answer:
                writer.write(answer)
                await asyncio.wait_for(writer.drain(), WRITE_SECONDS)
        except (OSError, TimeoutError):
            pass  # the client left or would not read: nothing more to do for it
        except Exception:
            log.exception("metrics/probe port: answering a request failed")
        finally:
            self.connections -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _answer_for(self, reader: asyncio.StreamReader) -> bytes:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_SECONDS)
        except TimeoutError:
            return _plain(408)
        except asyncio.LimitOverrunError:
            return _plain(431)
        except asyncio.IncompleteReadError:
            return b""  # closed before the end of its headers
        request = _parse_head(head)
        if request is None:
            return _plain(405)
        if request.method not in ("GET", "HEAD"):
            return _plain(405)
        route = self.routes.get(request.path)
        if route is None:
            return _plain(404)
        loop = asyncio.get_running_loop()
        status, content_type, body = await loop.run_in_executor(self._renderers, route, request.headers)
        return _answer(status, content_type, body, head_only=request.method == "HEAD")


def metrics_route(registry: Any) -> Route:
    """`/metrics` for `registry` in the format the scraper asks for (prometheus_client's encoders)."""
    from prometheus_client.exposition import choose_encoder

    def render(headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        return 200, content_type, encoder(registry)

    return render
