"""The signed checkpoint record: its fields, its canonical bytes, its JSON line, and signing it.

Rules this module keeps:
- A checkpoint states its number `seq` (1, 2, …), the chain length, the last event's id and hash (the head),
  the time, why it was made, the checkpoint interval, the previous checkpoint's digest (64 zeros for the first)
  and the signing key's id. `digest` is SHA-256 over the canonical JSON of exactly those fields; `signature` is
  Ed25519 over the same bytes. Checkpoints are chained through `prev_digest` like events through `prev_hash`.
- A record is read strictly (`Checkpoint.from_json`): unknown fields, wrong types or an unknown format version
  are a `CheckpointFormatError`, never a guess. Where an auditor found it (Slack ts, edited) is kept outside
  the signed fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from storage.audit import iso_timestamp
from storage.db import as_utc
from storage.signing import Signer

FORMAT_VERSION = 1
PAYLOAD_FIELDS = (
    "v",
    "seq",
    "reason",
    "created_at",
    "chain_length",
    "last_event_id",
    "head_hash",
    "prev_digest",
    "every",
    "key_id",
)
REASONS = ("count", "time", "shutdown")


class CheckpointFormatError(ValueError):
    """A checkpoint record that cannot even be read (not JSON, fields missing or of the wrong type)."""


def _canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    reason: str
    created_at: str  # iso_timestamp form
    chain_length: int
    last_event_id: int
    head_hash: str
    prev_digest: str
    every: int
    key_id: str
    digest: str
    signature: str
    # Where an auditor found it, outside the signed fields: Slack's message ts and whether Slack marks it edited.
    slack_ts: str | None = field(default=None, compare=False)
    slack_edited: bool = field(default=False, compare=False)

    def payload(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "seq": self.seq,
            "reason": self.reason,
            "created_at": self.created_at,
            "chain_length": self.chain_length,
            "last_event_id": self.last_event_id,
            "head_hash": self.head_hash,
            "prev_digest": self.prev_digest,
            "every": self.every,
            "key_id": self.key_id,
        }

    def signed_bytes(self) -> bytes:
        return _canonical(self.payload())

    def to_json(self) -> str:
        """The JSON line written to AUDIT_CHECKPOINT_FILE and posted to Slack."""
        record: dict[str, Any] = self.payload() | {"digest": self.digest, "signature": self.signature}
        if self.slack_ts is not None:
            record["slack"] = {"ts": self.slack_ts, "edited": self.slack_edited}
        return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        try:
            record = json.loads(text)
        except ValueError:
            raise CheckpointFormatError("not JSON") from None
        if not isinstance(record, dict):
            raise CheckpointFormatError("not a JSON object")
        unexpected = set(record) - set(PAYLOAD_FIELDS) - {"digest", "signature", "slack"}
        if unexpected:
            raise CheckpointFormatError(f"unexpected fields {sorted(unexpected)}")
        ints = ("seq", "chain_length", "last_event_id", "every", "v")
        texts = ("reason", "created_at", "head_hash", "prev_digest", "key_id", "digest", "signature")
        for name in ints:
            if type(record.get(name)) is not int:
                raise CheckpointFormatError(f"{name} missing or not a whole number")
        for name in texts:
            if not isinstance(record.get(name), str):
                raise CheckpointFormatError(f"{name} missing or not text")
        if record["v"] != FORMAT_VERSION:
            raise CheckpointFormatError(f"unknown format version {record['v']}")
        slack = record.get("slack")
        slack_ts, edited = None, False
        if isinstance(slack, dict):
            slack_ts = str(slack.get("ts")) if slack.get("ts") is not None else None
            edited = bool(slack.get("edited"))
        return cls(
            seq=record["seq"],
            reason=record["reason"],
            created_at=record["created_at"],
            chain_length=record["chain_length"],
            last_event_id=record["last_event_id"],
            head_hash=record["head_hash"],
            prev_digest=record["prev_digest"],
            every=record["every"],
            key_id=record["key_id"],
            digest=record["digest"],
            signature=record["signature"],
            slack_ts=slack_ts,
            slack_edited=edited,
        )

    def summary(self) -> str:
        """The human line of the Slack message."""
        return (
            f"Audit checkpoint #{self.seq} ({self.reason}): {self.chain_length:,} events, "
            f"last event {self.last_event_id}, head {self.head_hash[:12]}…, key {self.key_id}"
        )


def sign_checkpoint(
    signer: Signer,
    *,
    seq: int,
    reason: str,
    created_at: datetime,
    chain_length: int,
    last_event_id: int,
    head_hash: str,
    prev_digest: str,
    every: int,
) -> Checkpoint:
    unsigned = Checkpoint(
        seq=seq,
        reason=reason,
        created_at=iso_timestamp(as_utc(created_at)),
        chain_length=chain_length,
        last_event_id=last_event_id,
        head_hash=head_hash,
        prev_digest=prev_digest,
        every=every,
        key_id=signer.key_id,
        digest="",
        signature="",
    )
    message = unsigned.signed_bytes()
    return replace(unsigned, digest=hashlib.sha256(message).hexdigest(), signature=signer.sign(message))


def parse_lines(lines: Iterable[str]) -> list[Checkpoint] | tuple[int, str]:
    """Checkpoint records from JSON Lines; (line number, problem) for the first line that cannot be read."""
    found: list[Checkpoint] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            found.append(Checkpoint.from_json(line))
        except CheckpointFormatError as error:
            return number, str(error)
    return found
