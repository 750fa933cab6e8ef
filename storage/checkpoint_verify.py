"""Checking the audit chain against the signed checkpoints an auditor brings.

Rules this module keeps:
- Verification trusts only the records given (AUDIT_CHECKPOINT_FILE, the Slack channel) and the public keys,
  never the `audit_checkpoints` table.
- Each checkpoint is checked on its own (digest, trusted key, signature, format) and against the one before it
  (numbering without gaps or forks, `prev_digest`, never going backwards); a Slack copy marked edited fails.
- The chain walk of `AuditLog.verify`, in one snapshot, must reach every checkpoint's last event with exactly
  the length and hash it signed, and end where the chain head says; the first thing that does not fit is named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from storage.audit import EXPORT_COLUMNS, GENESIS_HASH, HEAD_ID, chain_head, events, row_digest
from storage.audit_seal import UNSEALED, unsealed_note, unsealed_problem
from storage.checkpoint_format import REASONS, Checkpoint
from storage.db import Database
from storage.signing import key_id_of, verify_signature

_EVENT_COLUMNS = [events.c[name] for name in EXPORT_COLUMNS]


@dataclass
class CheckpointVerifyResult:
    ok: bool
    events: int  # events checked and found intact before the first problem
    checkpoints: int  # checkpoints read
    culprit: str | None  # "event 17", "checkpoint #4", "the chain head", "FILE line 3"
    reason: str
    notes: list[str] = field(default_factory=list)


def check_records(
    records: Iterable[Checkpoint], keys: Iterable[Ed25519PublicKey]
) -> tuple[list[Checkpoint], tuple[str, str] | None]:
    """The checkpoints in order, each checked on its own and against the one before it.

    Returns (checkpoints, None) or (checkpoints so far, (culprit, reason)) for the first that does not fit.
    """
    by_id = {key_id_of(key): key for key in keys}
    unique: dict[int, Checkpoint] = {}
    for record in records:
        seen = unique.get(record.seq)
        if seen is not None and (seen.signed_bytes(), seen.signature) != (record.signed_bytes(), record.signature):
            return [], (f"checkpoint #{record.seq}", "two different checkpoints carry this number (forked?)")
        if seen is None or record.slack_edited:  # the same checkpoint twice: keep the copy Slack flags edited
            unique[record.seq] = record
    ordered = [unique[seq] for seq in sorted(unique)]
    good: list[Checkpoint] = []
    prev: Checkpoint | None = None
    for cp in ordered:
        name = f"checkpoint #{cp.seq}"
        expected_seq = prev.seq + 1 if prev else 1
        if cp.seq != expected_seq:
            return good, (f"checkpoint #{expected_seq}", f"missing (the next one found is #{cp.seq})")
        if cp.slack_edited:
            return good, (name, "its Slack message was edited after posting")
        if hashlib.sha256(cp.signed_bytes()).hexdigest() != cp.digest:
            return good, (name, "its digest does not match its contents (edited?)")
        key = by_id.get(cp.key_id)
        if key is None:
            return good, (name, f"signed with key {cp.key_id}, which is not among the trusted public keys")
        if not verify_signature(key, cp.signed_bytes(), cp.signature):
            return good, (name, "bad signature (forged or edited?)")
        if cp.prev_digest != (prev.digest if prev else GENESIS_HASH):
            return good, (name, f"does not follow checkpoint #{prev.seq if prev else 0} (prev_digest differs)")
        if cp.reason not in REASONS or cp.every < 1:
            return good, (name, "malformed (unknown reason or interval)")
        if prev and (cp.chain_length <= prev.chain_length or cp.last_event_id <= prev.last_event_id):
            return good, (name, f"goes backwards from checkpoint #{prev.seq}")
        good.append(cp)
        prev = cp
    return good, None


def verify_against_checkpoints(
    db: Database, records: Iterable[Checkpoint], keys: Iterable[Ed25519PublicKey], *, batch_size: int = 10000
) -> CheckpointVerifyResult:
    """The chain walk of AuditLog.verify, plus: at each checkpoint's last event the chain length and the hash
    must be what the checkpoint signed; every checkpoint's events must still be there."""
    cps, problem = check_records(records, keys)
    if problem is not None:
        return CheckpointVerifyResult(False, 0, len(cps), problem[0], problem[1])
    count = 0
    prev_id: int | None = None
    prev_hash = GENESIS_HASH
    pending = iter(cps)
    target = next(pending, None)
    last_matched: Checkpoint | None = None

    def fail(culprit: str, reason: str) -> CheckpointVerifyResult:
        return CheckpointVerifyResult(False, count, len(cps), culprit, reason)

    def rewritten(cp: Checkpoint) -> str:
        since = (
            f"after checkpoint #{last_matched.seq} (event {last_matched.last_event_id})"
            if last_matched
            else "from the start"
        )
        return f"events up to {cp.last_event_id} differ from what it signed: something {since} was changed"

    with db.begin(readonly=True, isolation_level="REPEATABLE READ") as conn:
        head = conn.execute(
            sa.select(chain_head.c.last_id, chain_head.c.last_hash).where(chain_head.c.id == HEAD_ID)
        ).first()
        rows = conn.execution_options(yield_per=batch_size).execute(sa.select(*_EVENT_COLUMNS).order_by(events.c.id))
        unsealed = 0
        for row in rows:
            values = dict(zip(EXPORT_COLUMNS, row, strict=True))
            row_id = values["id"]
            seal_problem = unsealed_problem(values, head)
            if seal_problem is not None:
                return fail(f"event {row_id}", seal_problem)
            if values["hash"] == UNSEALED:
                unsealed += 1
                continue
            if values["prev_hash"] != prev_hash:
                after = "the start of the chain" if prev_id is None else f"event {prev_id}"
                return fail(f"event {row_id}", f"prev_hash does not match {after} (deleted or reordered?)")
            if row_digest(values) != values["hash"]:
                return fail(f"event {row_id}", "hash mismatch (edited?)")
            if target is not None and target.last_event_id < row_id:
                return fail(
                    f"checkpoint #{target.seq}",
                    f"its last event {target.last_event_id} is not in the table (deleted, and the chain rebuilt?)",
                )
            prev_id, prev_hash = row_id, values["hash"]
            count += 1
            if target is not None and row_id == target.last_event_id:
                if prev_hash != target.head_hash or count != target.chain_length:
                    return fail(f"checkpoint #{target.seq}", rewritten(target))
                last_matched, target = target, next(pending, None)
    if target is not None:
        return fail(
            f"checkpoint #{target.seq}",
            f"it covers {target.chain_length} events up to event {target.last_event_id}, but the table ends at "
            f"event {prev_id or 0} after {count} (newest events deleted?)",
        )
    if head is None:
        return fail("the chain head", "the audit_chain_head row is missing (deleted?)")
    head_id, head_hash = int(head[0]), str(head[1])
    if head_id != (prev_id or 0) or head_hash != prev_hash:
        return fail(
            "the chain head",
            f"it records event {head_id}, but the table ends at event {prev_id or 0} (rows cut, added or edited?)",
        )
    result = CheckpointVerifyResult(
        True, count, len(cps), None, f"audit chain intact: {count} events, {len(cps)} checkpoints match"
    )
    if unsealed:
        result.notes.append(unsealed_note(unsealed).strip(" ()"))
    if count and not cps:
        result.ok, result.culprit = False, "the checkpoints"
        result.reason = f"no checkpoints given for a chain of {count} events"
    uncovered = count - (last_matched.chain_length if last_matched else 0)
    if uncovered and last_matched is not None:
        result.notes.append(
            f"{uncovered} events after checkpoint #{last_matched.seq} (event {last_matched.last_event_id}) are not "
            "covered by a checkpoint yet"
        )
    return result
