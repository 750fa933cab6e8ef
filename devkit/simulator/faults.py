"""Fault injection for the simulator: the things a real VPS.org does on a bad day (errors, rate limits with
Retry-After, dropped connections before or after the change is applied, HTML error pages, snapshots missing
from lists, a rotated token).

An armed fault fires on the next `times` matching requests, in arming order; `clear()` disarms them all.
Faults share the simulator's lock, so arming from a test thread is safe while requests are being served.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised by the app to drop the connection without an answer.

    It is an httpx transport error on purpose: `httpx.WSGITransport` lets app exceptions propagate unchanged,
    so in-process the client sees exactly what it would see over a socket ("server disconnected"). Over HTTP
    the server below catches it and closes the socket without writing a byte.
    """

    def __init__(self) -> None:
        super().__init__("Server disconnected without sending a response.")


@dataclass
class ArmedFault:
    kind: str  # "fail", "drop", "non_json", "slow"
    remaining: int
    methods: frozenset[str] | None
    status: int = 500
    body: bytes | None = None
    retry_after: float | None = None
    after_apply: bool = False
    path: str | None = None  # only requests whose path (after /api/v1/) starts with this, e.g. "servers/"
    delay: float = 0.0  # "slow": seconds to wait before answering normally

    def matches(self, method: str, path: str = "") -> bool:
        return (
            self.remaining > 0
            and (self.methods is None or method in self.methods)
            and (self.path is None or path.startswith(self.path))
        )


class Faults:
    """Fault-injection knobs. An armed fault fires on the next `times` matching requests, in arming order."""

    def __init__(self, lock: threading.RLock, set_token: Callable[[str], None]) -> None:
        self._lock = lock
        self._set_token = set_token
        self._queue: list[ArmedFault] = []
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
        path: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (plus `body`, `Retry-After`); no change.

        `path`: only requests whose path after /api/v1/ starts with it (e.g. "servers/")."""
        raw = body.encode() if isinstance(body, str) else body
        self._arm(
            ArmedFault("fail", times, _methods(methods), status=status, body=raw, retry_after=retry_after, path=path)
        )

    def slow_next(
        self, seconds: float, times: int = 1, *, methods: Iterable[str] | None = None, path: str | None = None
    ) -> None:
        """Answer the next `times` matching requests normally, but only after `seconds` (a slow endpoint)."""
        self._arm(ArmedFault("slow", times, _methods(methods), path=path, delay=max(0.0, float(seconds))))

    def drop_next(self, times: int = 1, *, after_apply: bool = False, methods: Iterable[str] | None = None) -> None:
        """Drop the connection without an answer; with `after_apply` the change is made first."""
        self._arm(ArmedFault("drop", times, _methods(methods), after_apply=after_apply))

    def non_json_next(self, times: int = 1, methods: Iterable[str] | None = None) -> None:
        """Answer 200 with an HTML page (as a misbehaving proxy would), doing nothing."""
        self._arm(ArmedFault("non_json", times, _methods(methods)))

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

    def _arm(self, fault: ArmedFault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queue.append(fault)

    def _take(self, method: str, path: str = "") -> ArmedFault | None:
        with self._lock:
            for fault in self._queue:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    self.fired += 1
                    if fault.remaining == 0:
                        self._queue.remove(fault)
                    return fault
            return None


def _methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(m.upper() for m in methods) if methods is not None else None
