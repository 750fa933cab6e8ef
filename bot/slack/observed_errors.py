"""Every failed Slack Web API attempt, reported: a retry handler that never retries, only looks.

slack_sdk shows each attempt's answer (or connection error) to the client's retry handlers in order, so one placed
first sees every attempt of every call — including calls made by the per-request clients Bolt builds, which copy
the app client's handlers. The report is (API method from the URL, Slack's error code, or `http_<status>` when the
answer carried none, or `connection` when no answer came). A 429 that is then retried counts once per attempt.
A failing report is swallowed: looking must never change what the client does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

ErrorReport = Callable[[str, str], None]


def _error_of(response: HttpResponse | None) -> str | None:
    """Slack's error code of a failed answer; None for a successful one."""
    if response is None:
        return "connection"
    body: Any = response.body
    if isinstance(body, dict) and body.get("ok") is False:
        return str(body.get("error") or f"http_{response.status_code}")
    if response.status_code >= 400:
        return f"http_{response.status_code}"
    return None


class SlackErrorObserver(RetryHandler):
    def __init__(self, report: ErrorReport) -> None:
        super().__init__(max_retry_count=0)
        self._report = report

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        with contextlib.suppress(Exception):
            error_code = _error_of(response)
            if error_code is not None:
                self._report(request.url.rstrip("/").rsplit("/", 1)[-1], error_code)
        return False
