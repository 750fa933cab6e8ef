"""How the VPS.org client talks HTTP: authentication, deadlines, retries, and mapping failures to typed errors.

Knows nothing of Slack or storage, nor of any endpoint (those are in bot.vps.client). Rules it keeps:
- GETs are safe to repeat, so they are retried on transient failures. POST and DELETE are never retried: a
  second create could make a second snapshot, and a repeated restore could wipe a server twice. When such a
  request fails after it may have reached VPS.org, the error says so (`Unavailable.outcome_unknown`).
- The bearer token lives in a `Secret` and is attached per request by an auth hook, so it is not part of the
  client's default headers, its repr, any log record or any exception text (the API's own words are scrubbed
  too, in case an error page echoes the token back).
- A caller may give a read a total `deadline` (on the client's monotonic `clock`). httpx's read timeout starts
  again with every chunk, so a slow-trickling answer could outlast any per-call timeout: with a deadline each
  attempt runs on a helper thread that the caller stops waiting for when the budget is spent, and a retry wait
  (backoff or Retry-After) that would not end inside the budget is not waited for at all. A GET abandoned that
  way is harmless; `DeadlineExceeded` says nothing was changed.
- Redirects are never followed (the token must not travel to another host).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Self

import httpx

from bot.config import Secret
from bot.redaction import MASK, redact
from bot.vps.api_words import _extract_message
from bot.vps.errors import DeadlineExceeded, NotFound, Rejected, Unauthorized, Unavailable, VpsError
from bot.vps.parsing import _retry_after

logger = logging.getLogger("bot.vps.client")  # the name operators and log filters already know

# Transport failures that prove the request never left this machine, so a POST/DELETE certainly did nothing.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class _BearerAuth(httpx.Auth):
    """Adds the Authorization header at send time; keeps the token out of the client's default headers."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class VpsTransport:
    """The HTTP side of one VPS.org account (`VpsClient` adds the endpoints). Thread-safe: one pooled
    `httpx.Client` shared by all calls."""

    def __init__(
        self,
        base_url: str,
        token: Secret | str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        get_retries: int = 3,
        backoff_seconds: float = 0.5,
        max_retry_after: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_url.endswith("/"):
            base_url += "/"
        self.base_url = base_url
        self._token = token if isinstance(token, Secret) else Secret(token)
        self._get_retries = max(0, get_retries)
        self._backoff = max(0.0, backoff_seconds)
        self._max_retry_after = max(0.0, max_retry_after)
        self._sleep = sleep
        self.clock = clock
        self._timeout = timeout
        self._write_listeners: list[Callable[[], None]] = []
        self._origin = httpx.URL(base_url).copy_with(path="/", query=None, fragment=None)
        self._http = httpx.Client(
            base_url=base_url,
            auth=_BearerAuth(self._token),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),  # the same limit for connect, read, write and pool
            transport=transport,
            follow_redirects=False,  # a redirect could carry the token to another host
        )

    # --- lifecycle

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def on_write(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every create, restore or delete this client sends, whatever its outcome (a failed
        write may still have changed the account): a cache of reads forgets what it holds."""
        self._write_listeners.append(listener)

    def _wrote(self) -> None:
        for listener in self._write_listeners:
            try:
                listener()
            except Exception:  # a listener's trouble must never turn a write's outcome into an error
                logger.exception("a write listener failed")

    def _same_origin(self, url: httpx.URL) -> bool:
        return (url.scheme, url.host, url.port) == (self._origin.scheme, self._origin.host, self._origin.port)

    def _get_json(self, url: str, params: dict[str, str] | None, *, what: str, deadline: float | None = None) -> Any:
        """GET with retries on connection errors, timeouts, 5xx and 429; within `deadline` when one is given."""
        attempt = 0
        while True:
            error: Unavailable
            try:
                if deadline is None:
                    response = self._http.get(url, params=params)
                else:
                    response = self._bounded_get(url, params, deadline, what=what)
            except httpx.TransportError as exc:
                error = Unavailable(f"Could not reach VPS.org ({_describe_transport_error(exc)})")
                retry_after = None
            else:
                if response.status_code < 300:
                    return self._decode(response, what=what, outcome_unknown=False)
                mapped = self._error_for(response, outcome_unknown=False)
                if not isinstance(mapped, Unavailable) or not (
                    response.status_code >= 500 or response.status_code == 429
                ):
                    raise mapped
                error, retry_after = mapped, mapped.retry_after
            if attempt >= self._get_retries:
                raise error
            delay = self._backoff * (2**attempt)
            if retry_after is not None:
                delay = retry_after
            delay = min(delay, self._max_retry_after)
            if deadline is not None and self.clock() + delay >= deadline:
                raise DeadlineExceeded(
                    f"VPS.org did not answer in time ({what}): the next retry would come after the deadline",
                    status_code=error.status_code,
                    api_message=error.api_message,
                    retry_after=error.retry_after,
                ) from error
            attempt += 1
            logger.warning("%s: %s; retry %d of %d in %.1fs", what, error, attempt, self._get_retries, delay)
            self._sleep(delay)

    def _bounded_get(self, url: str, params: dict[str, str] | None, deadline: float, *, what: str) -> httpx.Response:
        """One GET that the caller stops waiting for at `deadline`, however slowly the answer trickles in."""
        remaining = deadline - self.clock()
        too_slow = DeadlineExceeded(f"VPS.org did not answer in time ({what})")
        if remaining <= 0:
            raise too_slow
        outcome: list[httpx.Response | BaseException] = []
        done = threading.Event()

        def fetch() -> None:
            try:
                outcome.append(self._http.get(url, params=params, timeout=min(self._timeout, remaining)))
            except BaseException as exc:  # handed to the waiting caller
                outcome.append(exc)
            finally:
                done.set()

        threading.Thread(target=fetch, name="vps-bounded-get", daemon=True).start()
        if not done.wait(remaining) or self.clock() > deadline:
            raise too_slow
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _send(self, method: str, url: str, body: dict[str, Any] | None, *, what: str) -> Any:
        """POST or DELETE exactly once. Never retried: see the module docstring. Write listeners hear of it after."""
        try:
            return self._send_once(method, url, body, what=what)
        finally:
            self._wrote()

    def _send_once(self, method: str, url: str, body: dict[str, Any] | None, *, what: str) -> Any:
        try:
            response = self._http.request(method, url, json=body)
        except httpx.TransportError as exc:
            never_sent = isinstance(exc, _NEVER_SENT)
            reason = _describe_transport_error(exc)
            if never_sent:
                message = f"Could not reach VPS.org ({reason}); nothing was changed"
            else:
                message = (
                    f"Lost contact with VPS.org after sending the request ({reason}); it may or may not have "
                    "been carried out — check before trying again"
                )
            logger.warning("%s: %s", what, message)
            raise Unavailable(message, outcome_unknown=not never_sent) from exc
        if response.status_code >= 300:
            # A 5xx may come after the work was done (or half done); a 429 or 3xx means it was not accepted.
            error = self._error_for(response, outcome_unknown=response.status_code >= 500)
            logger.warning("%s: %s", what, error)
            raise error
        logger.info("%s: HTTP %d", what, response.status_code)
        if response.status_code == 204 or not response.content.strip():
            return None
        return self._decode(response, what=what, outcome_unknown=True)

    def _decode(self, response: httpx.Response, *, what: str, outcome_unknown: bool) -> Any:
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            detail = _extract_message(response.content, response.headers.get("content-type", ""), scrub=self._scrub)
            logger.warning("%s: HTTP %d with a body that is not JSON: %s", what, response.status_code, detail)
            message = f"VPS.org sent an unreadable answer (HTTP {response.status_code})"
            if outcome_unknown:
                message += "; the request may have been carried out — check before trying again"
            raise Unavailable(
                message, status_code=response.status_code, api_message=detail, outcome_unknown=outcome_unknown
            ) from None

    def _error_for(self, response: httpx.Response, *, outcome_unknown: bool) -> VpsError:
        status = response.status_code
        api_message = _extract_message(response.content, response.headers.get("content-type", ""), scrub=self._scrub)
        suffix = f": {api_message}" if api_message else ""
        if status == 401:
            return Unauthorized(
                f"VPS.org refused the API token (HTTP 401){suffix}",
                status_code=status,
                api_message=api_message,
            )
        if status == 404:
            return NotFound(
                f"VPS.org says it does not exist (HTTP 404){suffix}",
                status_code=status,
                api_message=api_message,
            )
        if status == 429:
            retry_after = _retry_after(response.headers.get("retry-after"))
            wait = f"; try again in {retry_after:.0f}s" if retry_after is not None else ""
            return Unavailable(
                f"VPS.org is rate limiting the bot (HTTP 429){suffix}{wait}",
                status_code=status,
                api_message=api_message,
                retry_after=retry_after,
            )
        if status >= 500:
            message = f"VPS.org had a server error (HTTP {status}){suffix}"
            if outcome_unknown:
                message += "; the request may or may not have been carried out — check before trying again"
            return Unavailable(
                message,
                status_code=status,
                api_message=api_message,
                outcome_unknown=outcome_unknown,
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if 400 <= status < 500:
            return Rejected(
                f"VPS.org rejected the request (HTTP {status}){suffix}",
                status_code=status,
                api_message=api_message,
            )
        # 1xx/3xx: not something this API does; we never follow redirects (the token must not travel).
        return Unavailable(f"VPS.org sent an unexpected answer (HTTP {status})", status_code=status)

    def _scrub(self, text: str) -> str:
        """The API's own words, minus the token (or any 8+ character piece of its start) and anything token-shaped,
        should an error page ever echo them back. Runs before the words are clipped, never after."""
        token = self._token.reveal()
        if token:
            text = text.replace(token, MASK)
        return redact(text)


def _describe_transport_error(exc: httpx.TransportError) -> str:
    kinds: list[tuple[type[Exception], str]] = [
        (httpx.ConnectTimeout, "connection timed out"),
        (httpx.ReadTimeout, "timed out waiting for the answer"),
        (httpx.WriteTimeout, "timed out sending the request"),
        (httpx.PoolTimeout, "no free connection"),
        (httpx.ConnectError, "connection failed"),
        (httpx.RemoteProtocolError, "connection closed without an answer"),
        (httpx.ReadError, "connection lost while reading the answer"),
        (httpx.WriteError, "connection lost while sending"),
    ]
    for kind, words in kinds:
        if isinstance(exc, kind):
            return words
    return type(exc).__name__
