"""HTTP client for the VPS.org API: the typed endpoints, each with its typed result and typed errors.

Knows nothing of Slack or storage. Rules that shape this module:
- Reads (`list_*`, `account_me`) go through the retrying GET of bot.vps.transport, within the caller's
  `deadline` when one is given; writes (create, restore, delete) are sent exactly once (see bot.vps.transport).
- A list follows `next` links only on the API's own host, one page after another (only `next` is documented), never
  loops, and reports the API's `count` as `total` so callers can say "showing N of M". A runaway `next` chain is
  stopped by a bound derived from that `count` (`page_bound`: the pages the count needs at the first page's size,
  plus a margin for an account that grows while it is read), never by a fixed page count, so an account of any size
  is listed whole; an empty page that still links on, a listing without a `count` past `PAGES_WITHOUT_COUNT`, and
  anything past `MAX_ITEMS` stop it too, and the result then says it is incomplete.
- Bot writes (create, restore, delete) are announced to `on_write` listeners after the call, whatever its outcome,
  so a cache of reads can forget what the write may have changed.
- A write that answered 2xx but cannot be read raises `Unavailable(outcome_unknown=True)`: it probably happened.
The transport (token, retries, deadlines, error mapping) is in bot.vps.transport, answer parsing in
bot.vps.parsing, the API's own words in bot.vps.api_words; their public names are re-exported here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from bot.vps.api_words import MAX_MESSAGE_CHARS
from bot.vps.errors import Unavailable
from bot.vps.models import CreatedSnapshot, RestoreResult, Server, ServerRef, Snapshot
from bot.vps.parsing import _int, _page_parts, _parse_server, _parse_snapshot, _text, _unique, parse_timestamp
from bot.vps.transport import VpsTransport

__all__ = [
    "MAX_ITEMS",
    "MAX_MESSAGE_CHARS",
    "PAGES_WITHOUT_COUNT",
    "ServerList",
    "SnapshotList",
    "VpsClient",
    "page_bound",
    "parse_timestamp",
]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

MAX_ITEMS = 500_000  # far above any account (10× the 50,000 snapshots measured); a `count` beyond is not believed
PAGES_WITHOUT_COUNT = 100  # a listing that never says how long it is gets this many pages
GROWTH_MARGIN = 0.05  # an account may grow by this share while it is being read (plus two pages)


def page_bound(count: int | None, first_page_items: int) -> int:
    """How many pages a listing may take before its `next` chain counts as runaway.

    Derived from what the API reports: the pages `count` items need at the first page's size, plus 5 % and two
    pages for snapshots created while the listing is read. Without a usable count (or an empty first page) the old
    fixed cap applies."""
    if count is None or first_page_items <= 0:
        return PAGES_WITHOUT_COUNT
    expected = min(count, MAX_ITEMS)
    allowed = expected + int(expected * GROWTH_MARGIN)
    return max(1, -(-allowed // first_page_items)) + 2


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


class VpsClient(VpsTransport):
    """One VPS.org account. Thread-safe: one pooled `httpx.Client` shared by all calls."""

    def __repr__(self) -> str:
        return f"VpsClient(base_url={self.base_url!r})"

    # --- snapshots

    def list_snapshots(self, server_id: int | None = None, *, deadline: float | None = None) -> SnapshotList:
        """All snapshots (of one server when `server_id` is given), following `next` links.

        `deadline` (a `clock()` value) bounds the whole listing, every page and retry included.
        """
        params = {"server_id": str(server_id)} if server_id is not None else None
        fallback = ServerRef(server_id, "") if server_id is not None else None
        items, total = self._list(
            "snapshots/", params, lambda item: _parse_snapshot(item, fallback), what="list snapshots", deadline=deadline
        )
        return SnapshotList(_unique(items), total)

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
        snap = given if isinstance(given := data.get("snapshot"), dict) else {}
        server = named if isinstance(named := data.get("server"), dict) else {}
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

    def list_servers(self, status: str | None = None, *, deadline: float | None = None) -> ServerList:
        """All servers (with `status`, only those VPS.org reports in that state), following `next` links.

        `deadline` (a `clock()` value) bounds the whole listing, every page and retry included.
        """
        params = {"status": status} if status else None
        items, total = self._list("servers/", params, _parse_server, what="list servers", deadline=deadline)
        return ServerList(_unique(items), total)

    def account_me(self) -> dict[str, Any]:
        """The account behind the token: a cheap credential check at start-up."""
        data = self._get_json("account/me/", None, what="check the account")
        if not isinstance(data, dict):
            raise Unavailable("VPS.org sent an account answer the bot does not understand", status_code=200)
        return data

    # --- plumbing

    def _list(
        self,
        path: str,
        params: dict[str, str] | None,
        parse: Callable[[Any], _T | None],
        *,
        what: str,
        deadline: float | None = None,
    ) -> tuple[list[_T], int | None]:
        """Every page's `results`, parsed, one page after another. Returns (parsed items, the API's count or None).

        Pages are requested one at a time (only `next` is documented), but a page is parsed while the next one is
        on its way (`_PREFETCH`), so the bot's own work hides behind the API's page time. A stopped listing
        (runaway chain, foreign or looping link, empty page that links on) is returned as far as it got: its count
        then exceeds the items, and callers treat it as incomplete."""
        parsed: list[_T] = []
        received = 0
        total: int | None = None
        url: str = path
        seen: set[str] = set()
        bound = PAGES_WITHOUT_COUNT
        page = 0
        stopped = False  # a `next` link was left unfollowed: the list is not known to be whole
        prefetch: ThreadPoolExecutor | None = None
        data = self._get_json(url, params, what=what, deadline=deadline)
        try:
            while True:
                page += 1
                results, count, next_url = _page_parts(data)
                if results is None:
                    raise Unavailable(f"VPS.org sent a list the bot does not understand ({what})", status_code=200)
                received += len(results)
                if page == 1:
                    total = count
                    bound = page_bound(count, len(results))
                follow = self._next_page(url, next_url, results, page, bound, received, total, seen, what=what)
                stopped = stopped or (next_url is not None and follow is None)
                coming: Future[Any] | None = None
                if follow is not None:
                    prefetch = prefetch or ThreadPoolExecutor(max_workers=1, thread_name_prefix="vps-next-page")
                    coming = prefetch.submit(self._get_json, follow, None, what=what, deadline=deadline)
                    time.sleep(0)  # let the request go out before parsing takes the interpreter
                parsed.extend(item for item in map(parse, results) if item is not None)
                if coming is None or follow is None:
                    break
                url, data = follow, coming.result()
        finally:
            if prefetch is not None:
                prefetch.shutdown(wait=False, cancel_futures=True)
        if total is not None and received < total:
            logger.warning("%s: VPS.org reported %d items but sent %d", what, total, received)
        if stopped:  # more was linked than was read: never let the items pass for the whole list
            total = max(total or 0, received + 1)
        return parsed, total

    def _next_page(
        self,
        url: str,
        next_url: str | None,
        results: list[Any],
        page: int,
        bound: int,
        received: int,
        total: int | None,
        seen: set[str],
        *,
        what: str,
    ) -> str | None:
        """The absolute URL of the page to read next, or None: the end, or a link not to follow (logged)."""
        if not next_url:
            return None
        if not results:
            logger.warning("%s: an empty page links to another one; stopping (the list may be incomplete)", what)
            return None
        if page >= bound or received >= MAX_ITEMS:
            logger.warning(
                "%s: stopped after %d pages (%d items; VPS.org reported %s); the list may be incomplete",
                what,
                page,
                received,
                total,
            )
            return None
        # A relative `next` is relative to the page it came on (RFC 3986), not to the base URL.
        absolute = self._http.base_url.join(url).join(next_url)
        if not self._same_origin(absolute):
            logger.warning(
                "%s: ignoring a pagination link to another host (%s); the list may be incomplete", what, absolute.host
            )
            return None
        key = str(absolute)
        if key in seen:
            logger.warning("%s: pagination loops back to a page already read; stopping", what)
            return None
        seen.add(key)
        return key
