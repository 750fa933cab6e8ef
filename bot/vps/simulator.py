"""A stand-in for the VPS.org API: a WSGI app that behaves as the docs (/work/shared/vps-api.md) say.

Used in-process by tests (`VpsSimulator.transport()`), over loopback HTTP by the local shell and benchmarks
(`start_in_thread`, `serve`). It records every request and has fault-injection knobs (`faults`) for the things
a real API does on a bad day: errors, rate limits, dropped connections, HTML error pages, rotated tokens.

Time-based transitions (a snapshot completing, a restore finishing) are evaluated lazily against `clock` on
every request and state read, so a fake clock makes them deterministic and no background thread is needed.
"""

from __future__ import annotations

import contextlib
import http
import json
import logging
import re
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode
from wsgiref.handlers import SimpleHandler
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

import httpx

from bot.vps.models import SNAPSHOTS_PER_SERVER

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
DEFAULT_TOKEN = "vps_simulator_token"
FIRST_NEW_SNAPSHOT_ID = 900
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


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised by the app to drop the connection without an answer.

    It is an httpx transport error on purpose: `httpx.WSGITransport` lets app exceptions propagate unchanged,
    so in-process the client sees exactly what it would see over a socket ("server disconnected"). Over HTTP
    the server below catches it and closes the socket without writing a byte.
    """

    def __init__(self) -> None:
        super().__init__("Server disconnected without sending a response.")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it. The Authorization header itself is never stored."""

    method: str
    path: str  # full path, e.g. "/api/v1/snapshots/801/restore/"
    query: dict[str, str]
    json: Any  # the decoded JSON body, or None (no body or not JSON)
    authorized: bool
    status: int | None = None  # the status answered; None when the connection was dropped
    applied: bool = False  # True when the request changed the simulator's state
    fault: str | None = None  # "fail", "drop", "drop_after_apply", "non_json" when a fault was injected


@dataclass
class _Fault:
    kind: str  # "fail", "drop", "non_json"
    remaining: int
    methods: frozenset[str] | None
    status: int = 500
    body: bytes | None = None
    retry_after: float | None = None
    after_apply: bool = False

    def matches(self, method: str) -> bool:
        return self.remaining > 0 and (self.methods is None or method in self.methods)


class Faults:
    """Fault-injection knobs. An armed fault fires on the next `times` matching requests, in arming order."""

    def __init__(self, lock: threading.RLock, set_token: Callable[[str], None]) -> None:
        self._lock = lock
        self._set_token = set_token
        self._queue: list[_Fault] = []
        self._latency = 0.0
        self._hidden: frozenset[int] = frozenset()
        self.fired = 0  # how many requests a fault was applied to

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = max(0.0, float(seconds))

    def fail_next(
        self,
        status: int,
        times: int = 1,
        body: str | bytes | None = None,
        retry_after: float | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (plus `body`, `Retry-After`); no change."""
        raw = body.encode() if isinstance(body, str) else body
        self._arm(_Fault("fail", times, _methods(methods), status=status, body=raw, retry_after=retry_after))

    def drop_next(self, times: int = 1, *, after_apply: bool = False, methods: Iterable[str] | None = None) -> None:
        """Drop the connection without an answer; with `after_apply` the change is made first."""
        self._arm(_Fault("drop", times, _methods(methods), after_apply=after_apply))

    def non_json_next(self, times: int = 1, methods: Iterable[str] | None = None) -> None:
        """Answer 200 with an HTML page (as a misbehaving proxy would), doing nothing."""
        self._arm(_Fault("non_json", times, _methods(methods)))

    def hide_in_lists(self, *snapshot_ids: int) -> None:
        """Leave these snapshots out of list pages while `count` still counts them (an incomplete listing)."""
        with self._lock:
            self._hidden = frozenset(snapshot_ids)

    @property
    def hidden(self) -> frozenset[int]:
        return self._hidden

    def rotate_token(self, new_token: str) -> None:
        """From now on only `new_token` is accepted; the old one gets 401."""
        with self._lock:
            self._set_token(new_token)

    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._latency = 0.0
            self._hidden = frozenset()

    def _arm(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queue.append(fault)

    def _take(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._queue:
                if fault.matches(method):
                    fault.remaining -= 1
                    self.fired += 1
                    if fault.remaining == 0:
                        self._queue.remove(fault)
                    return fault
            return None


def _methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(m.upper() for m in methods) if methods is not None else None


@dataclass
class _Server:
    id: int
    name: str
    status: str
    extra: dict[str, Any] = field(default_factory=dict)
    restore_done_at: float | None = None  # clock time when a running restore finishes

    def as_json(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "name": self.name,
            "hostname": f"{self.name}.example.net",
            "status": self.status,
            "ip_address": f"203.0.113.{self.id % 250 + 1}",  # TEST-NET-3: never a real address
            "location": "ams1",
            "plan": {"id": 2, "name": "standard-2", "vcpus": 2, "memory_mb": 4096, "disk_gb": 80},
            "os": {"id": 11, "name": "Ubuntu 24.04 LTS"},
            "created_at": "2024-06-01T09:00:00Z",
            "updated_at": "2025-01-15T18:00:00Z",
        }
        data.update(self.extra)
        return data


@dataclass
class _Snapshot:
    id: int
    server_id: int
    name: str
    status: str
    size_mb: int | None
    created_at: datetime
    description: str
    complete_at: float | None = None  # clock time when an in-progress snapshot completes


class _Reply(Exception):
    """Internal: stop handling and answer with this status and JSON body."""

    def __init__(self, status: int, body: Any = None, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []


class VpsSimulator:
    """The VPS.org API in memory. All state behind one lock; safe to call from many threads."""

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
        self._lock = threading.RLock()
        self._token = token
        self.completion_delay = completion_delay
        self.restore_delay = restore_delay
        self._clock = clock
        self.page_size = max(1, page_size)
        self._servers: dict[int, _Server] = {}
        self._snapshots: dict[int, _Snapshot] = {}
        self._next_id = FIRST_NEW_SNAPSHOT_ID
        self._requests: list[RecordedRequest] = []
        self.faults = Faults(self._lock, self._set_token)
        if seed:
            self._seed()

    def __repr__(self) -> str:
        return f"VpsSimulator(servers={len(self._servers)}, snapshots={len(self._snapshots)})"

    # --- wiring

    def transport(self) -> httpx.WSGITransport:
        """An in-process transport for `VpsClient(..., transport=sim.transport())`."""
        return httpx.WSGITransport(app=self)

    @property
    def token(self) -> str:
        with self._lock:
            return self._token

    def _set_token(self, token: str) -> None:
        with self._lock:
            self._token = token

    # --- state helpers (tests, shell, benchmarks)

    def add_server(self, server_id: int, name: str, status: str = "active", **extra: Any) -> None:
        with self._lock:
            self._servers[server_id] = _Server(server_id, name, status, dict(extra))

    def add_snapshot(
        self,
        server_id: int,
        name: str,
        *,
        status: str = "completed",
        size_mb: int | None = 1024,
        created_at: datetime | None = None,
        description: str = "",
        snapshot_id: int | None = None,
    ) -> int:
        """Add a snapshot directly (no limit check); an `in_progress` one waits for `complete_snapshot`."""
        with self._lock:
            if server_id not in self._servers:
                raise ValueError(f"no server {server_id} in the simulator")
            if snapshot_id is None:
                snapshot_id = self._new_id()
            elif snapshot_id in self._snapshots:
                raise ValueError(f"snapshot {snapshot_id} already exists")
            if snapshot_id >= self._next_id:
                self._next_id = snapshot_id + 1
            self._snapshots[snapshot_id] = _Snapshot(
                id=snapshot_id,
                server_id=server_id,
                name=name,
                status=status,
                size_mb=None if status == "in_progress" else size_mb,
                created_at=created_at or datetime.now(UTC).replace(microsecond=0),
                description=description,
            )
            return snapshot_id

    def move_snapshot(self, snapshot_id: int, server_id: int) -> None:
        """VPS.org re-homing a snapshot id onto another server (what a restore must never follow blindly)."""
        with self._lock:
            if server_id not in self._servers:
                raise ValueError(f"no server {server_id} in the simulator")
            self._snapshots[snapshot_id].server_id = server_id

    def rename_snapshot(self, snapshot_id: int, name: str) -> None:
        with self._lock:
            self._snapshots[snapshot_id].name = name

    def complete_snapshot(self, snapshot_id: int) -> None:
        with self._lock:
            snapshot = self._snapshots[snapshot_id]
            self._complete(snapshot)

    def snapshot_status(self, snapshot_id: int) -> str | None:
        with self._lock:
            self._advance()
            snapshot = self._snapshots.get(snapshot_id)
            return snapshot.status if snapshot else None

    def server_status(self, server_id: int) -> str | None:
        with self._lock:
            self._advance()
            server = self._servers.get(server_id)
            return server.status if server else None

    def set_server_status(self, server_id: int, status: str) -> None:
        with self._lock:
            server = self._servers[server_id]
            server.status = status
            server.restore_done_at = None

    def snapshot_ids(self, server_id: int | None = None) -> list[int]:
        with self._lock:
            self._advance()
            return sorted(s.id for s in self._snapshots.values() if server_id in (None, s.server_id))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy), oldest first."""
        with self._lock:
            return list(self._requests)

    def calls(self, method: str | None = None, path_prefix: str | None = None) -> list[RecordedRequest]:
        """Recorded requests filtered by method and path prefix ("snapshots/" or "/api/v1/snapshots/")."""
        if path_prefix is not None and not path_prefix.startswith("/"):
            path_prefix = API_PREFIX + path_prefix
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_prefix is None or r.path.startswith(path_prefix))
        ]

    # --- the WSGI app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        raw = _read_body(environ)
        body, body_is_json = _decode_json(raw)

        if self.faults.latency:
            time.sleep(self.faults.latency)
        with self._lock:
            authorized = environ.get("HTTP_AUTHORIZATION", "") == f"Bearer {self._token}"
        record = RecordedRequest(method, path, query, body if body_is_json else None, authorized)

        fault = self.faults._take(method)
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

    def _fault_reply(self, fault: _Fault, start_response: Callable[..., Any]) -> list[bytes]:
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
        page = self._page([self._snapshot_json(s) for s in items], query, environ)
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
        return self._page([s.as_json() for s in items], query, environ)

    def _page(self, items: list[dict[str, Any]], query: dict[str, str], environ: dict[str, Any]) -> dict[str, Any]:
        """DRF-style page: `count`, `next`/`previous` as absolute URLs (None at the ends), `results`."""
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
            "results": items[start : start + self.page_size],
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
        snapshot = _Snapshot(
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

    def _snapshot_json(self, s: _Snapshot) -> dict[str, Any]:
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

    def _advance(self) -> None:
        """Apply every time-based transition that is due by the clock."""
        now = self._clock()
        for snapshot in self._snapshots.values():
            if snapshot.status == "in_progress" and snapshot.complete_at is not None and snapshot.complete_at <= now:
                self._complete(snapshot)
        for server in self._servers.values():
            if server.restore_done_at is not None and server.restore_done_at <= now:
                server.status = "active"
                server.restore_done_at = None

    def _complete(self, snapshot: _Snapshot) -> None:
        snapshot.status = "completed"
        snapshot.complete_at = None
        if snapshot.size_mb is None:
            snapshot.size_mb = 2048 + (snapshot.id * 37) % 4096  # deterministic, plausible

    def _new_id(self) -> int:
        while self._next_id in self._snapshots:
            self._next_id += 1
        new_id = self._next_id
        self._next_id += 1
        return new_id

    def _seed(self) -> None:
        """The documented example (server 12345, snapshots 801 and 798) plus a few servers around it."""

        def at(text: str) -> datetime:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))

        self.add_server(12345, "web-server-01")
        self.add_server(12346, "db-server-01")
        self.add_server(12347, "cache-01")
        self.add_server(12348, "staging-01", status="stopped")
        self.add_server(12349, "legacy-01", status="suspended")
        seeded = [
            (801, 12345, "pre-migration-snapshot", 5120, "2025-01-15T18:30:00Z", "Before major migration"),
            (798, 12345, "weekly-snapshot-2025-01-08", 4856, "2025-01-08T12:00:00Z", "Weekly snapshot"),
            (805, 12346, "db-pre-upgrade", 20480, "2025-01-14T09:15:00Z", "Before PostgreSQL 16 upgrade"),
            (806, 12346, "db-nightly-2025-01-16", 20992, "2025-01-16T02:00:00Z", "Nightly"),
            (807, 12346, "db-nightly-2025-01-17", 21010, "2025-01-17T02:00:00Z", "Nightly"),
        ]
        seeded += [
            (810 + i, 12348, f"staging-build-{i + 1}", 3000 + i * 10, f"2025-01-1{i}T10:00:00Z", "CI build")
            for i in range(SNAPSHOTS_PER_SERVER)
        ]
        for snapshot_id, server_id, name, size, created, description in seeded:
            self.add_snapshot(
                server_id,
                name,
                size_mb=size,
                created_at=at(created),
                description=description,
                snapshot_id=snapshot_id,
            )


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


def _fault_status(fault: _Fault) -> int:
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


# --- serving over loopback HTTP


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


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(sim: VpsSimulator, host: str = "127.0.0.1", port: int = 0) -> _ThreadingServer:
    server = _ThreadingServer((host, port), _RequestHandler)
    server.set_app(sim)
    return server


def start_in_thread(sim: VpsSimulator, host: str = "127.0.0.1", port: int = 0) -> tuple[str, Callable[[], None]]:
    """Serve `sim` in a daemon thread. Returns (base URL like "http://127.0.0.1:PORT/api/v1/", stop)."""
    server = make_server(sim, host, port)
    bound_host, bound_port = server.server_address[:2]
    # A short poll interval: `stop()` waits up to one interval for the serving loop to notice.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="vps-simulator", daemon=True
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://{bound_host}:{bound_port}{API_PREFIX}", stop


def serve(host: str = "127.0.0.1", port: int = 8089, token: str = DEFAULT_TOKEN, completion_delay: float = 5.0) -> None:
    """Serve a seeded simulator until interrupted (`python -m bot simulate-vps`)."""
    sim = VpsSimulator(token, completion_delay=completion_delay)
    with make_server(sim, host, port) as server:
        bound_host, bound_port = server.server_address[:2]
        logger.info("VPS.org simulator on http://%s:%s%s", bound_host, bound_port, API_PREFIX)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
