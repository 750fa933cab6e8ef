"""HTTP client for the VPS.org API: typed results, typed errors, careful retries.

Knows nothing of Slack or storage. Rules that shape this module:
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
"""

from __future__ import annotations

import email.utils
import html
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from bot.config import Secret
from bot.redaction import MASK, redact
from bot.vps.errors import DeadlineExceeded, NotFound, Rejected, Unauthorized, Unavailable, VpsError
from bot.vps.models import CreatedSnapshot, RestoreResult, Server, ServerRef, Snapshot

logger = logging.getLogger(__name__)

MAX_PAGES = 100  # a list longer than this is a runaway `next` chain, not real data (5 snapshots per server)
MAX_MESSAGE_CHARS = 300
_UNKNOWN_STATUS = "unknown"

# Transport failures that prove the request never left this machine, so a POST/DELETE certainly did nothing.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class SnapshotList(list[Snapshot]):
    """The snapshots the API returned; `total` is the API's `count`, so callers can say "showing N of M"."""

    def __init__(self, items: Iterable[Snapshot] = (), total: int | None = None) -> None:
        super().__init__(items)
        self.total = len(self) if total is None else max(total, len(self))

    @property
    def complete(self) -> bool:
        return len(self) >= self.total


class ServerList(list[Server]):
    """The servers the API returned, plus `total` (the API's `count`)."""

    def __init__(self, items: Iterable[Server] = (), total: int | None = None) -> None:
        super().__init__(items)
        self.total = len(self) if total is None else max(total, len(self))

    @property
    def complete(self) -> bool:
        return len(self) >= self.total


class _BearerAuth(httpx.Auth):
    """Adds the Authorization header at send time; keeps the token out of the client's default headers."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class VpsClient:
    """One VPS.org account. Thread-safe: one pooled `httpx.Client` shared by all calls."""

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
        self._origin = httpx.URL(base_url).copy_with(path="/", query=None, fragment=None)
        self._http = httpx.Client(
            base_url=base_url,
            auth=_BearerAuth(self._token),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),  # the same limit for connect, read, write and pool
            transport=transport,
            follow_redirects=False,  # a redirect could carry the token to another host
        )

    def __repr__(self) -> str:
        return f"VpsClient(base_url={self.base_url!r})"

    # --- lifecycle

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- snapshots

    def list_snapshots(self, server_id: int | None = None, *, deadline: float | None = None) -> SnapshotList:
        """All snapshots (of one server when `server_id` is given), following `next` links.

        `deadline` (a `clock()` value) bounds the whole listing, every page and retry included.
        """
        params = {"server_id": str(server_id)} if server_id is not None else None
        items, total = self._list("snapshots/", params, what="list snapshots", deadline=deadline)
        fallback = ServerRef(server_id, "") if server_id is not None else None
        snapshots = _unique(s for s in (_parse_snapshot(item, fallback) for item in items) if s is not None)
        return SnapshotList(snapshots, total)

    def create_snapshot(self, server_id: int, name: str, description: str = "") -> CreatedSnapshot:
        body: dict[str, Any] = {"server_id": server_id, "name": name}
        if description:
            body["description"] = description
        data = self._send("POST", "snapshots/", body, what=f"create snapshot {name!r} of server {server_id}")
        snapshot = _parse_snapshot(data, ServerRef(server_id, "")) if isinstance(data, dict) else None
        if snapshot is None:
            # It answered 2xx, so the snapshot probably exists; but we cannot say which one it is.
            raise Unavailable(
                "VPS.org accepted the snapshot request but its answer could not be read; "
                "check the snapshot list before trying again",
                status_code=201,
                outcome_unknown=True,
            )
        return CreatedSnapshot(snapshot=snapshot, message=_text(data.get("message")))

    def restore_snapshot(self, snapshot_id: int) -> RestoreResult:
        data = self._send(
            "POST", f"snapshots/{int(snapshot_id)}/restore/", None, what=f"restore snapshot {snapshot_id}"
        )
        if not isinstance(data, dict):
            raise Unavailable(
                "VPS.org accepted the restore request but its answer could not be read; "
                "check the server's status before trying again",
                status_code=200,
                outcome_unknown=True,
            )
        snap = data.get("snapshot") if isinstance(data.get("snapshot"), dict) else {}
        server = data.get("server") if isinstance(data.get("server"), dict) else {}
        return RestoreResult(
            status=_text(data.get("status")),
            message=_text(data.get("message")),
            snapshot_id=_int(snap.get("id")) or int(snapshot_id),
            snapshot_name=_text(snap.get("name")),
            server_id=_int(server.get("id")) or 0,
            server_name=_text(server.get("name")),
            server_status=_text(server.get("status")),
        )

    def delete_snapshot(self, snapshot_id: int) -> None:
        self._send("DELETE", f"snapshots/{int(snapshot_id)}/", None, what=f"delete snapshot {snapshot_id}")

    # --- servers and account

    def list_servers(self, status: str | None = None) -> ServerList:
        params = {"status": status} if status else None
        items, total = self._list("servers/", params, what="list servers")
        servers = _unique(s for s in (_parse_server(item) for item in items) if s is not None)
        return ServerList(servers, total)

    def account_me(self) -> dict[str, Any]:
        """The account behind the token: a cheap credential check at start-up."""
        data = self._get_json("account/me/", None, what="check the account")
        if not isinstance(data, dict):
            raise Unavailable("VPS.org sent an account answer the bot does not understand", status_code=200)
        return data

    # --- plumbing

    def _list(
        self, path: str, params: dict[str, str] | None, *, what: str, deadline: float | None = None
    ) -> tuple[list[Any], int | None]:
        """Collect `results` across pages. Returns (raw items, the API's count or None)."""
        items: list[Any] = []
        total: int | None = None
        url: str = path
        seen: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            data = self._get_json(url, params if page == 1 else None, what=what, deadline=deadline)
            results, count, next_url = _page_parts(data)
            if results is None:
                raise Unavailable(f"VPS.org sent a list the bot does not understand ({what})", status_code=200)
            items.extend(results)
            if total is None and count is not None:
                total = count
            if not next_url:
                break
            # A relative `next` is relative to the page it came on (RFC 3986), not to the base URL.
            absolute = self._http.base_url.join(url).join(next_url)
            if not self._same_origin(absolute):
                logger.warning(
                    "%s: ignoring a pagination link to another host (%s); the list may be incomplete",
                    what,
                    absolute.host,
                )
                break
            if str(absolute) in seen:
                logger.warning("%s: pagination loops back to a page already read; stopping", what)
                break
            seen.add(str(absolute))
            url = str(absolute)
        else:
            logger.warning("%s: stopped after %d pages; the list may be incomplete", what, MAX_PAGES)
        if total is not None and len(items) < total:
            logger.warning("%s: VPS.org reported %d items but sent %d", what, total, len(items))
        return items, total

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
        """POST or DELETE exactly once. Never retried: see the module docstring."""
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


# --- parsing (pure functions, tolerant of whatever comes)


def _page_parts(data: Any) -> tuple[list[Any] | None, int | None, str | None]:
    """(results, count, next) of one page; a bare JSON list is accepted as a single complete page."""
    if isinstance(data, list):
        return data, None, None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        return None, None, None
    count = data.get("count")
    count = count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None
    next_url = data.get("next")
    return data["results"], count, next_url if isinstance(next_url, str) and next_url.strip() else None


def _parse_snapshot(item: Any, fallback_server: ServerRef | None) -> Snapshot | None:
    if not isinstance(item, dict):
        logger.warning("skipping a snapshot entry that is not an object: %.80r", item)
        return None
    snapshot_id = _int(item.get("id"))
    if snapshot_id is None:
        # Without an id nobody can restore or delete it, so there is nothing useful to show.
        logger.warning("skipping a snapshot entry without a usable id (name %.80r)", item.get("name"))
        return None
    return Snapshot(
        id=snapshot_id,
        server=_parse_server_ref(item, fallback_server),
        name=_text(item.get("name")),
        status=_text(item.get("status")) or _UNKNOWN_STATUS,
        size_mb=_int(item.get("size_mb")),
        created_at=parse_timestamp(item.get("created_at")),
        description=_text(item.get("description")),
    )


def _parse_server_ref(item: dict[str, Any], fallback: ServerRef | None) -> ServerRef:
    server = item.get("server")
    if isinstance(server, dict):
        server_id = _int(server.get("id"))
        name = _text(server.get("name"))
    else:
        server_id = _int(server) if server is not None else _int(item.get("server_id"))
        name = ""
    if server_id is None:
        server_id = fallback.id if fallback else 0  # 0: VPS.org did not say which server
    if not name and fallback and fallback.id == server_id:
        name = fallback.name
    return ServerRef(server_id, name)


def _parse_server(item: Any) -> Server | None:
    if not isinstance(item, dict):
        logger.warning("skipping a server entry that is not an object: %.80r", item)
        return None
    server_id = _int(item.get("id"))
    if server_id is None:
        logger.warning("skipping a server entry without a usable id (name %.80r)", item.get("name"))
        return None
    location = item.get("location")
    if isinstance(location, dict):
        location = location.get("name") or location.get("code") or location.get("city")
    return Server(
        id=server_id,
        name=_text(item.get("name")),
        status=_text(item.get("status")) or _UNKNOWN_STATUS,
        hostname=_text(item.get("hostname")),
        ip_address=_text(item.get("ip_address")),
        location=_text(location),
    )


_Item = TypeVar("_Item", Snapshot, Server)


def _unique(items: Iterable[_Item]) -> list[_Item]:
    """Drop repeats by id: a page boundary shifting under us (a new snapshot) can repeat an entry."""
    seen: set[int] = set()
    out: list[_Item] = []
    for item in items:
        if item.id not in seen:
            seen.add(item.id)
            out.append(item)
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 ("2025-01-15T18:30:00Z") to an aware UTC datetime; None when missing or unparseable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # the API documents UTC ("Z"); a bare time is taken as UTC
    return parsed.astimezone(UTC)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


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


# --- the API's own words, from whatever body comes

_PREFERRED_KEYS = ("detail", "error", "message", "error_description", "errors", "non_field_errors")
_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_DROP_BLOCKS = re.compile(r"<(script|style|head)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)


def _extract_message(
    body: bytes, content_type: str = "", scrub: Callable[[str], str] = lambda text: text
) -> str | None:
    """A short human message from an error body: JSON in its usual shapes, HTML, plain text, or nothing.

    `scrub` runs on the whole body and again on the extracted words (JSON or HTML escapes can hide a token from
    the first pass), always before `_shorten`: a token cut in half by the clip would no longer be recognisable.
    """
    text = scrub(body.decode("utf-8", errors="replace")).strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    else:
        message = _flatten(data)
        return _shorten(scrub(message)) if message else None
    if "html" in content_type.lower() or re.match(r"<(!doctype|html|head|body)\b", text, re.IGNORECASE):
        return _shorten(scrub(_from_html(text)))
    return _shorten(text)


def _flatten(data: Any, prefix: str = "") -> str:
    """{"detail": "x"} → "x"; {"name": ["Invalid name"]} → "name: Invalid name"; nesting joined with "; "."""
    if data is None:
        return ""
    if isinstance(data, str):
        return f"{prefix}{data.strip()}" if data.strip() else ""
    if isinstance(data, int | float | bool):
        return f"{prefix}{data}"
    if isinstance(data, list):
        parts = [_flatten(item) for item in data]
        joined = "; ".join(p for p in parts if p)
        return f"{prefix}{joined}" if joined else ""
    if isinstance(data, dict):
        for key in _PREFERRED_KEYS:
            if key in data:
                found = _flatten(data[key])
                if found:
                    return f"{prefix}{found}"
        parts = []
        for key, value in data.items():
            if key in ("status", "code", "status_code"):
                continue  # bookkeeping, not words meant for people
            found = _flatten(value, f"{key}: ")
            if found:
                parts.append(found)
        joined = "; ".join(parts)
        return f"{prefix}{joined}" if joined else ""
    return ""


def _from_html(text: str) -> str:
    title = _TITLE.search(text)
    body = _DROP_BLOCKS.sub(" ", text)
    words = " ".join(html.unescape(_TAG.sub(" ", body)).split())
    title_text = " ".join(html.unescape(_TAG.sub(" ", title.group(1))).split()) if title else ""
    if title_text and title_text not in words:
        return f"{title_text}: {words}" if words else title_text
    return words or title_text or "an HTML error page"


def _shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
