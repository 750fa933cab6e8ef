"""Reading VPS.org's answers: pure functions from whatever JSON comes to the typed models, tolerant of surprises.

Rules this module keeps:
- Nothing here raises on a malformed answer: an entry that is not an object, or has no usable id, is skipped with
  a warning (nobody could restore or delete it); a missing or unknown field becomes "" / None / "unknown".
- Numbers and booleans are never confused (`True` is not an id); timestamps become aware UTC datetimes.
- Entries repeated across a shifting page boundary are dropped by id (`_unique`).
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.vps.models import Server, ServerRef, Snapshot

logger = logging.getLogger("bot.vps.client")  # the name operators and log filters already know

_UNKNOWN_STATUS = "unknown"


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
