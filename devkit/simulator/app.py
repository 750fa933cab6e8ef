"""The simulator's WSGI app: the VPS.org API as the docs (/work/shared/vps-api.md) describe it, answered from the
simulated account, with armed faults applied first.

Rules: every request is recorded (never its Authorization header); a mutating call is applied at most once and
its record says whether it was; a dropped connection raises `DroppedConnection`, which in-process reaches the
client as a transport error and over HTTP closes the socket without a byte.
"""

from __future__ import annotations

import http
import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx

from bot.vps.models import SNAPSHOTS_PER_SERVER
from devkit.simulator.account import API_PREFIX, DEFAULT_TOKEN, RecordedRequest, SimulatedAccount, SnapshotRecord
from devkit.simulator.faults import ArmedFault, DroppedConnection, Faults

CREATE_MESSAGE = "Snapshot is being created. This may take 3-10 minutes depending on server size."
RESTORE_MESSAGE = "Server is being restored from snapshot. This may take 5-15 minutes."
LIMIT_MESSAGE = f"Snapshot limit reached: maximum {SNAPSHOTS_PER_SERVER} snapshots per server"
AUTH_MESSAGE = "Invalid or missing authentication token"
RESTORABLE_SERVER_STATES = frozenset({"active", "stopped"})

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_SNAPSHOT_PATH = re.compile(r"^snapshots/(\d+)/$")
_RESTORE_PATH = re.compile(r"^snapshots/(\d+)/restore/$")
_HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The upstream server is not responding.</p></body></html>"
)


class _Reply(Exception):
    """Internal: stop handling and answer with this status and JSON body."""

    def __init__(self, status: int, body: Any = None, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []


class VpsSimulator(SimulatedAccount):
    """The VPS.org API in memory, as a WSGI app. Safe to call from many threads."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        completion_delay: float = 5.0,
        restore_delay: float = 10.0,
        seed: bool = True,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = 100,
    ) -> None:
        super().__init__(
            token,
            completion_delay=completion_delay,
            restore_delay=restore_delay,
            seed=seed,
            clock=clock,
            page_size=page_size,
        )
        self.faults = Faults(self._lock, self._set_token)

    def __repr__(self) -> str:
        return f"VpsSimulator(servers={len(self._servers)}, snapshots={len(self._snapshots)})"

    def transport(self) -> httpx.WSGITransport:
        """An in-process transport for `VpsClient(..., transport=sim.transport())`."""
        return httpx.WSGITransport(app=self)

    # --- the WSGI app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        raw = _read_body(environ)
        received_at = time.monotonic()
        body, body_is_json = _decode_json(raw)

        if self.faults.latency:
            time.sleep(self.faults.latency)
        with self._lock:
            authorized = environ.get("HTTP_AUTHORIZATION", "") == f"Bearer {self._token}"
        record = RecordedRequest(
            method, path, query, body if body_is_json else None, authorized, received_at=received_at
        )

        fault = self.faults._take(method, path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else path)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)  # then answered as usual
            fault = None
        if fault is not None and not (fault.kind == "drop" and fault.after_apply):
            self._record(record, status=None if fault.kind == "drop" else _fault_status(fault), fault=fault.kind)
            return self._fault_reply(fault, start_response)

        try:
            with self._lock:
                self._advance()
                status, payload, applied = self._route(
                    method, path, query, raw, body, body_is_json, authorized, environ
                )
            headers: list[tuple[str, str]] = []
        except _Reply as reply:
            status, payload, applied, headers = reply.status, reply.body, False, reply.headers

        if fault is not None:  # a drop after the change was made: the client never learns the outcome
            self._record(record, status=None, applied=applied, fault="drop_after_apply")
            raise DroppedConnection()
        self._record(record, status=status, applied=applied)
        data = b"" if payload is None else json.dumps(payload).encode()
        headers = [*headers, ("Content-Length", str(len(data)))]
        if payload is not None:
            headers.append(("Content-Type", "application/json"))
        start_response(_status_line(status), headers)
        return [data]

    def _record(
        self, record: RecordedRequest, *, status: int | None, applied: bool = False, fault: str | None = None
    ) -> None:
        with self._lock:
            self._requests.append(replace(record, status=status, applied=applied, fault=fault))

    def _fault_reply(self, fault: ArmedFault, start_response: Callable[..., Any]) -> list[bytes]:
        if fault.kind == "drop":
            raise DroppedConnection()
        if fault.kind == "non_json":
            start_response(_status_line(200), [("Content-Type", "text/html"), ("Content-Length", str(len(_HTML_PAGE)))])
            return [_HTML_PAGE]
        if fault.body is not None:
            data = fault.body
            content_type = "application/json" if data[:1] in (b"{", b"[") else "text/plain"
        else:
            data = json.dumps({"detail": f"Simulated failure ({http.HTTPStatus(fault.status).phrase})"}).encode()
            content_type = "application/json"
        headers = [("Content-Type", content_type), ("Content-Length", str(len(data)))]
        if fault.retry_after is not None:
            headers.append(("Retry-After", f"{fault.retry_after:g}"))
        start_response(_status_line(fault.status), headers)
        return [data]

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        raw: bytes,
        body: Any,
        body_is_json: bool,
        authorized: bool,
        environ: dict[str, Any],
    ) -> tuple[int, Any, bool]:
        """(status, JSON payload or None, whether state changed). Raises `_Reply` for errors."""
        if not path.startswith(API_PREFIX):
            raise _Reply(404, {"detail": "Not found."})
        route = path[len(API_PREFIX) :]
        handlers: dict[str, Callable[[], tuple[int, Any, bool]]] = {}
        if route == "snapshots/":
            handlers = {
                "GET": lambda: (200, self._list_snapshots(query, environ), False),
                "POST": lambda: self._create(raw, body, body_is_json),
            }
        elif route == "servers/":
            handlers = {"GET": lambda: (200, self._list_servers(query, environ), False)}
        elif route == "account/me/":
            handlers = {"GET": lambda: (200, self._account(), False)}
        elif match := _RESTORE_PATH.match(route):
            handlers = {"POST": lambda: self._restore(int(match.group(1)))}
        elif match := _SNAPSHOT_PATH.match(route):
            handlers = {"DELETE": lambda: self._delete(int(match.group(1)))}
        else:
            raise _Reply(404, {"detail": "Not found."})
        if not authorized:
            raise _Reply(401, {"detail": AUTH_MESSAGE}, [("WWW-Authenticate", 'Bearer realm="api"')])
        handler = handlers.get(method)
        if handler is None:
            raise _Reply(405, {"detail": f'Method "{method}" not allowed.'}, [("Allow", ", ".join(handlers))])
        return handler()

    def _list_snapshots(self, query: dict[str, str], environ: dict[str, Any]) -> dict[str, Any]:
        items = sorted(self._snapshots.values(), key=lambda s: (s.created_at, s.id), reverse=True)
        if "server_id" in query:
            try:
                server_id = int(query["server_id"])
            except ValueError:
                raise _Reply(400, {"server_id": ["A valid integer is required."]}) from None
            items = [s for s in items if s.server_id == server_id]
        page = self._page(items, query, environ, self._snapshot_json)
        hidden = self.faults.hidden
        if hidden:  # `count` keeps counting them: the listing is visibly incomplete
            page["results"] = [item for item in page["results"] if item["id"] not in hidden]
        return page

    def _list_servers(self, query: dict[str, str], environ: dict[str, Any]) -> dict[str, Any]:
        items = sorted(self._servers.values(), key=lambda s: s.id)
        if query.get("status"):
            items = [s for s in items if s.status == query["status"]]
        if query.get("location"):
            items = [s for s in items if s.as_json().get("location") == query["location"]]
        return self._page(items, query, environ, lambda s: s.as_json())

    def _page(
        self, items: list[Any], query: dict[str, str], environ: dict[str, Any], as_json: Callable[[Any], Any]
    ) -> dict[str, Any]:
        """DRF-style page: `count`, `next`/`previous` as absolute URLs (None at the ends), `results` (only the page's
        items are turned into JSON, so a 50,000-snapshot account pages in linear time)."""
        try:
            page = int(query.get("page", "1"))
        except ValueError:
            raise _Reply(404, {"detail": "Invalid page."}) from None
        pages = max(1, -(-len(items) // self.page_size))
        if not 1 <= page <= pages:
            raise _Reply(404, {"detail": "Invalid page."})
        start = (page - 1) * self.page_size

        def link(number: int) -> str | None:
            if not 1 <= number <= pages or number == page:
                return None
            params = {**query, "page": str(number)}
            if number == 1:
                del params["page"]
            qs = urlencode(params)
            return f"{_origin(environ)}{environ.get('PATH_INFO', '')}{'?' + qs if qs else ''}"

        return {
            "count": len(items),
            "next": link(page + 1),
            "previous": link(page - 1),
            "results": [as_json(item) for item in items[start : start + self.page_size]],
        }

    def _create(self, raw: bytes, body: Any, body_is_json: bool) -> tuple[int, Any, bool]:
        if not body_is_json or not isinstance(body, dict):
            raise _Reply(400, {"detail": "JSON parse error - expected an object." if raw.strip() else "No data."})
        errors: dict[str, list[str]] = {}
        server_id = body.get("server_id")
        if server_id is None:
            errors["server_id"] = ["This field is required."]
        elif not isinstance(server_id, int) or isinstance(server_id, bool):
            errors["server_id"] = ["A valid integer is required."]
        name = body.get("name")
        if name is None or name == "":
            errors["name"] = ["This field is required."]
        elif not isinstance(name, str) or not _NAME.match(name):
            errors["name"] = [
                "Invalid name: use 1-100 letters, digits, hyphens or underscores.",
            ]
        description = body.get("description", "")
        if description is None:
            description = ""
        if not isinstance(description, str):
            errors["description"] = ["Not a valid string."]
        if errors:
            raise _Reply(400, errors)
        server = self._servers.get(server_id)
        if server is None:
            raise _Reply(404, {"detail": "Server not found."})
        if sum(1 for s in self._snapshots.values() if s.server_id == server_id) >= SNAPSHOTS_PER_SERVER:
            raise _Reply(400, {"error": LIMIT_MESSAGE})
        snapshot = SnapshotRecord(
            id=self._new_id(),
            server_id=server_id,
            name=name,
            status="in_progress",
            size_mb=None,
            created_at=datetime.now(UTC).replace(microsecond=0),
            description=description,
            complete_at=self._clock() + self.completion_delay,
        )
        self._snapshots[snapshot.id] = snapshot
        return 201, {**self._snapshot_json(snapshot), "message": CREATE_MESSAGE}, True

    def _restore(self, snapshot_id: int) -> tuple[int, Any, bool]:
        snapshot = self._snapshots.get(snapshot_id)
        if snapshot is None:
            raise _Reply(404, {"detail": "Snapshot not found."})
        if snapshot.status != "completed":
            raise _Reply(400, {"error": f"Snapshot is not ready for restoration (status: {snapshot.status})"})
        server = self._servers[snapshot.server_id]
        if server.status not in RESTORABLE_SERVER_STATES:
            raise _Reply(400, {"error": f"Server is not in a valid state for restoration (status: {server.status})"})
        server.status = "restoring"
        server.restore_done_at = self._clock() + self.restore_delay
        return (
            200,
            {
                "status": "success",
                "message": RESTORE_MESSAGE,
                "snapshot": {
                    "id": snapshot.id,
                    "name": snapshot.name,
                    "created_at": _iso(snapshot.created_at),
                },
                "server": {"id": server.id, "name": server.name, "status": server.status},
            },
            True,
        )

    def _delete(self, snapshot_id: int) -> tuple[int, Any, bool]:
        if self._snapshots.pop(snapshot_id, None) is None:
            raise _Reply(404, {"detail": "Snapshot not found."})
        return 204, None, True

    def _account(self) -> dict[str, Any]:
        return {
            "id": 4242,
            "email": "ops@example.com",
            "name": "Ops Team",
            "status": "active",
            "servers": len(self._servers),
        }

    # --- internals (call with the lock held)

    def _snapshot_json(self, s: SnapshotRecord) -> dict[str, Any]:
        server = self._servers.get(s.server_id)
        return {
            "id": s.id,
            "server": {"id": s.server_id, "name": server.name if server else ""},
            "name": s.name,
            "status": s.status,
            "size_mb": s.size_mb,
            "created_at": _iso(s.created_at),
            "description": s.description,
        }


# --- helpers


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _decode_json(raw: bytes) -> tuple[Any, bool]:
    if not raw.strip():
        return None, False
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False


def _fault_status(fault: ArmedFault) -> int:
    return 200 if fault.kind == "non_json" else fault.status


def _status_line(status: int) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {phrase}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _origin(environ: dict[str, Any]) -> str:
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        host = environ.get("SERVER_NAME", "localhost")
        port = environ.get("SERVER_PORT", "")
        if port and port not in ("80", "443"):
            host = f"{host}:{port}"
    return f"{scheme}://{host}"
