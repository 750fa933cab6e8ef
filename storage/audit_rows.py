"""What an audit row is: the entry and record types, the canonical serialisation and the row digest.

Rules this module keeps:
- A row's `hash` is the SHA-256 of `canonical_row` over all its other columns, timestamps in the one
  `iso_timestamp` form, so what is hashed is exactly what reads back from either database.
- Every text is made valid UTF-8 (`valid_utf8`), redacted (`Redactor`) and cut to its column's width before it is
  hashed or stored, so no value can make a row impossible to write.
- Details are stored as canonical JSON (compact, sorted keys, every string escaped).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from json.encoder import encode_basestring as _encode_json_string  # what json.dumps(ensure_ascii=False) uses
from typing import Any

from storage.db import as_utc
from storage.models import AuditChainHead, AuditEvent

events = AuditEvent.__table__
chain_head = AuditChainHead.__table__


@dataclass(frozen=True)
class AuditEntry:
    """What callers append. `created_at`, `id` and the hashes are assigned by `AuditLog`."""

    action: str
    outcome: str
    actor_id: str
    actor_name: str = ""
    team_id: str | None = None
    channel_id: str | None = None
    server_id: int | None = None
    snapshot_id: int | None = None
    request_id: int | None = None
    operation_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """What readers get: a stored row, `details` decoded."""

    id: int
    created_at: datetime
    action: str
    outcome: str
    actor_id: str
    actor_name: str
    team_id: str | None
    channel_id: str | None
    server_id: int | None
    snapshot_id: int | None
    request_id: int | None
    operation_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the timestamp in the canonical ISO form."""
        return {name: getattr(self, name) for name in EXPORT_COLUMNS} | {"created_at": iso_timestamp(self.created_at)}


# Export column order (and the fields of AuditRecord).
EXPORT_COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    "action",
    "outcome",
    "actor_id",
    "actor_name",
    "team_id",
    "channel_id",
    "server_id",
    "snapshot_id",
    "request_id",
    "operation_id",
    "details",
    "prev_hash",
    "hash",
)
_SELECT_COLUMNS = [events.c[name] for name in EXPORT_COLUMNS]
# Free-text columns and their widths: values are redacted, then cut to fit (PostgreSQL enforces the widths).
_TEXT_COLUMNS: dict[str, int] = {
    name: events.c[name].type.length  # type: ignore[attr-defined]
    for name in ("actor_id", "actor_name", "team_id", "channel_id", "action", "outcome", "operation_id")
}


# ---- canonical form and hashing -----------------------------------------------------------------------
def iso_timestamp(value: datetime) -> str:
    """The one timestamp format that is hashed: UTC, microseconds, `Z` (e.g. 2024-05-01T12:00:00.000000Z)."""
    if value.tzinfo is not UTC:
        value = as_utc(value)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"  # drop the "+00:00"


def canonical_row(row: Mapping[str, Any]) -> str:
    """The text that is hashed: sorted-key compact JSON of every column except `hash`.

    Same output as `json.dumps({...}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` (a test
    holds the two together), spelled out because append_many and verify run it once per row.
    `row` holds the column values as stored (details as its JSON text); the timestamp goes in `iso_timestamp`
    form, so what is hashed is exactly what reads back from either database.
    """
    enc = _encode_json_string
    team, channel, op = row["team_id"], row["channel_id"], row["operation_id"]
    request, server, snapshot = row["request_id"], row["server_id"], row["snapshot_id"]
    return (
        f'{{"action":{enc(row["action"])},"actor_id":{enc(row["actor_id"])},'
        f'"actor_name":{enc(row["actor_name"])},"channel_id":{"null" if channel is None else enc(channel)},'
        f'"created_at":"{iso_timestamp(row["created_at"])}","details":{enc(row["details"])},'
        f'"id":{int(row["id"])},"operation_id":{"null" if op is None else enc(op)},'
        f'"outcome":{enc(row["outcome"])},"prev_hash":{enc(row["prev_hash"])},'
        f'"request_id":{"null" if request is None else int(request)},'
        f'"server_id":{"null" if server is None else int(server)},'
        f'"snapshot_id":{"null" if snapshot is None else int(snapshot)},'
        f'"team_id":{"null" if team is None else enc(team)}}}'
    )


def row_digest(row: Mapping[str, Any]) -> str:
    """SHA-256 hex of `canonical_row(row)`."""
    return hashlib.sha256(canonical_row(row).encode("utf-8")).hexdigest()


class Redactor:
    """How credentials are masked before a value is hashed and stored.

    Storage knows no credential patterns: the bot injects its masking functions (`text` for one string,
    `value` for any JSON-like value, recursively). `NO_REDACTION` stores values as given.
    """

    def __init__(self, text: Callable[[str], str], value: Callable[[Any], Any]) -> None:
        self.text = text
        self.value = value
        self._encoder = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=self._json_default
        )

    def _json_default(self, value: Any) -> Any:
        # Details are meant to be plain JSON; anything else is stored as text (redacted: str() of an exception
        # or of a request object may well carry a token).
        if isinstance(value, datetime):
            return iso_timestamp(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, set | frozenset):
            return sorted((self.value(item) for item in value), key=repr)
        return self.text(str(value))

    def details(self, details: Mapping[str, Any] | None) -> str:
        """Details as canonical JSON with every string (keys included) passed through `text`."""
        if not details:
            return "{}"
        plain = details if type(details) is dict else dict(details)
        try:
            text = self._encoder.encode(plain)
            # Fast path: with no escapes in the text every string appears in it verbatim between quotes, so if
            # the masking finds nothing in the whole text it would find nothing in any single string either.
            if "\\" not in text and self.text(text) == text:
                return text
            return self._encoder.encode(self.value(plain))
        except (TypeError, ValueError):  # mixed-type keys, a cycle: keep the event, store the details as text
            return self._encoder.encode({"unserialisable_details": self.text(repr(plain))})


NO_REDACTION = Redactor(text=lambda text: text, value=lambda value: value)


def valid_utf8(text: str) -> str:
    """`text` as valid UTF-8: surrogate pairs joined, lone surrogates replaced by U+FFFD (they cannot be encoded)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _fit(value: Any, width: int) -> str | None:
    """A text column's value, cut to the column width (PostgreSQL enforces it; NUL it refuses outright)."""
    if value is None:
        return None
    text = valid_utf8(value if type(value) is str else str(value))
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:width]


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _prepare(entry: AuditEntry, redactor: Redactor) -> dict[str, Any]:
    """Column values for an entry, redacted and fitted to the schema; id, time and hashes come later."""
    if not entry.actor_id:
        raise ValueError("an audit entry needs an actor_id (a Slack user id, or 'system')")
    widths = _TEXT_COLUMNS
    return {
        "actor_id": _fit(entry.actor_id, widths["actor_id"]),
        "actor_name": _fit(redactor.text(str(entry.actor_name or "")), widths["actor_name"]),
        "team_id": _fit(entry.team_id, widths["team_id"]),
        "channel_id": _fit(entry.channel_id, widths["channel_id"]),
        "action": _fit(entry.action, widths["action"]),
        "outcome": _fit(entry.outcome, widths["outcome"]),
        "server_id": _optional_int(entry.server_id),
        "snapshot_id": _optional_int(entry.snapshot_id),
        "request_id": _optional_int(entry.request_id),
        "operation_id": _fit(entry.operation_id, widths["operation_id"]),
        "details": valid_utf8(redactor.details(entry.details)),
    }


def _record(row: Any) -> AuditRecord:
    values = dict(zip(EXPORT_COLUMNS, row, strict=True))
    values["details"] = json.loads(values["details"]) if values["details"] else {}
    return AuditRecord(**values)
