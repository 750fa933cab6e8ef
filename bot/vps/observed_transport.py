"""An httpx transport that reports every request it carries: method, path, status (None: no answer), seconds.

It knows nothing of what is done with the report (the composition root hands it `Metrics.vps_call`), and it
changes nothing about the request: no retry, no header, no mapping of errors, which are re-raised as they came.
The time is measured to the answer's headers, as the client's own timeouts are; the body is read afterwards.
A failing report is swallowed: observing a call must never be the reason it fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import httpx

Report = Callable[[str, str, int | None, float], None]


class ObservedTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, report: Report, base_path: str = "/") -> None:
        self._inner = inner
        self._report = report
        self._base_path = base_path if base_path.endswith("/") else base_path + "/"

    def _relative(self, path: str) -> str:
        """The path under the API's base (`/api/v1/snapshots/` → `snapshots/`), which the endpoints are named by."""
        return path[len(self._base_path) :] if path.startswith(self._base_path) else path

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        status: int | None = None
        try:
            response = self._inner.handle_request(request)
            status = response.status_code
            return response
        finally:
            with contextlib.suppress(Exception):
                self._report(request.method, self._relative(request.url.path), status, time.perf_counter() - started)

    def close(self) -> None:
        self._inner.close()
