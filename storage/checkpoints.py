"""Signed checkpoints of the audit chain, and checking the chain against them.

Rules this module keeps:
- A checkpoint states its number `seq` (1, 2, …), the chain length, the last event's id and hash (the head),
  the time, why it was made, the checkpoint interval, the previous checkpoint's digest (64 zeros for the first)
  and the signing key's id. `digest` is SHA-256 over the canonical JSON of exactly those fields; `signature` is
  Ed25519 over the same bytes. Checkpoints are chained through `prev_digest` like events through `prev_hash`.
- They are made at every multiple of `every` events ("count"), when the oldest event not yet covered is
  `minutes` old ("time"), and at graceful shutdown ("shutdown").
- The signer never signs what it has not checked: the events since the previous checkpoint must link to it and
  end at the chain head, or nothing is signed (`CheckpointRefused`).
- `seq` is the table's primary key, so of several replicas reaching the same boundary exactly one inserts; the
  others hit the conflict and sign nothing. The table is only the delivery queue: verification trusts the
  records an auditor brings (AUDIT_CHECKPOINT_FILE, the Slack channel) and the public keys, never this table.
- Nothing here updates or deletes an audit event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.exc import IntegrityError

from storage.audit import EXPORT_COLUMNS, GENESIS_HASH, HEAD_ID, Action, AuditEntry, AuditLog, iso_timestamp, row_digest
from storage.db import Database, as_utc, utcnow
from storage.models import AuditChainHead, AuditCheckpoint, AuditEvent
from storage.signing import Signer, key_id_of, verify_signature

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
REANCHOR_ACTION = Action.AUDIT_REANCHORED

events = AuditEvent.__table__
chain_head = AuditChainHead.__table__
checkpoints = AuditCheckpoint.__table__
_EVENT_COLUMNS = [events.c[name] for name in EXPORT_COLUMNS]


class CheckpointFormatError(ValueError):
    """A checkpoint record that cannot even be read (not JSON, fields missing or of the wrong type)."""


class CheckpointRefused(RuntimeError):
    """The chain does not link up to its head or to the previous checkpoint: signing it would bless tampering."""


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


@dataclass(frozen=True)
class _Planned:
    chain_length: int
    last_event_id: int
    head_hash: str
    reason: str


class CheckpointStore:
    """Making checkpoints (the signer's side) and the delivery queue in the `audit_checkpoints` table."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def latest(self) -> Checkpoint | None:
        stmt = sa.select(checkpoints.c.record).order_by(checkpoints.c.seq.desc()).limit(1)
        with self.db.begin(readonly=True) as conn:
            record = conn.execute(stmt).scalar()
        return None if record is None else Checkpoint.from_json(record)

    def after(self, seq: int, limit: int = 1000) -> list[Checkpoint]:
        """Checkpoints numbered above `seq`, in order (for the file writer)."""
        stmt = sa.select(checkpoints.c.record).where(checkpoints.c.seq > seq).order_by(checkpoints.c.seq).limit(limit)
        with self.db.begin(readonly=True) as conn:
            return [Checkpoint.from_json(record) for record in conn.execute(stmt).scalars()]

    def create_due(
        self, signer: Signer, *, every: int, minutes: float | None, final: bool = False, limit: int = 1000
    ) -> list[Checkpoint]:
        """Sign and store every checkpoint that is due now; returns those this process inserted.

        `final` (graceful shutdown) checkpoints whatever is not covered yet. At most `limit` are made per call,
        so catching up on a long unwitnessed chain happens in steps. Raises CheckpointRefused when the chain
        does not link up, and returns [] when another replica inserted the same checkpoints first.
        """
        now = as_utc(self.clock())
        with self.db.begin(readonly=True, isolation_level="REPEATABLE READ") as conn:
            last = conn.execute(sa.select(checkpoints.c.record).order_by(checkpoints.c.seq.desc()).limit(1)).scalar()
            previous = None if last is None else Checkpoint.from_json(last)
            head = conn.execute(
                sa.select(chain_head.c.last_id, chain_head.c.last_hash).where(chain_head.c.id == HEAD_ID)
            ).first()
            if head is None:
                raise CheckpointRefused("the audit_chain_head row is missing")
            head_id, head_hash = int(head[0]), str(head[1])
            covered = previous.chain_length if previous else 0
            after_id = previous.last_event_id if previous else 0
            running = previous.head_hash if previous else GENESIS_HASH
            if head_id < after_id or (head_id == after_id and head_hash != running):
                raise CheckpointRefused(
                    f"the chain head (event {head_id}) no longer matches checkpoint #{previous.seq if previous else 0} "
                    f"(event {after_id}): events cut or rewritten?"
                )
            if head_id == after_id:
                return []
            plans = self._plan(conn, after_id, head_id, head_hash, covered, running, every, minutes, final, now, limit)
        if not plans:
            return []
        made: list[Checkpoint] = []
        seq = previous.seq if previous else 0
        prev_digest = previous.digest if previous else GENESIS_HASH
        for plan in plans:
            seq += 1
            checkpoint = sign_checkpoint(
                signer,
                seq=seq,
                reason=plan.reason,
                created_at=now,
                chain_length=plan.chain_length,
                last_event_id=plan.last_event_id,
                head_hash=plan.head_hash,
                prev_digest=prev_digest,
                every=every,
            )
            prev_digest = checkpoint.digest
            made.append(checkpoint)
        try:
            with self.db.begin() as conn:
                conn.execute(
                    sa.insert(checkpoints),
                    [
                        {
                            "seq": c.seq,
                            "created_at": now,
                            "chain_length": c.chain_length,
                            "last_event_id": c.last_event_id,
                            "head_hash": c.head_hash,
                            "digest": c.digest,
                            "key_id": c.key_id,
                            "record": c.to_json(),
                            "slack_attempts": 0,
                        }
                        for c in made
                    ],
                )
        except IntegrityError:  # another replica signed this boundary first: theirs is the one witnessed
            return []
        return made

    @staticmethod
    def _plan(
        conn: sa.Connection,
        after_id: int,
        head_id: int,
        head_hash: str,
        covered: int,
        running: str,
        every: int,
        minutes: float | None,
        final: bool,
        now: datetime,
        limit: int,
    ) -> list[_Planned]:
        """Walk the events after the previous checkpoint, checking each links, and note where checkpoints fall."""
        plans: list[_Planned] = []
        position, last_id, oldest_uncovered = covered, after_id, None
        stmt = sa.select(*_EVENT_COLUMNS).where(events.c.id > after_id).where(events.c.id <= head_id)
        rows = conn.execution_options(yield_per=2000).execute(stmt.order_by(events.c.id))
        for row in rows:
            values = dict(zip(EXPORT_COLUMNS, row, strict=True))
            if values["prev_hash"] != running or row_digest(values) != values["hash"]:
                raise CheckpointRefused(
                    f"event {values['id']} does not link to the chain before it (edited, deleted or reordered?)"
                )
            running, last_id = values["hash"], values["id"]
            position += 1
            if oldest_uncovered is None:
                oldest_uncovered = as_utc(values["created_at"])
            if position % every == 0:
                plans.append(_Planned(position, last_id, running, "count"))
                oldest_uncovered = None
                if len(plans) >= limit:
                    return plans
        if last_id != head_id or running != head_hash:
            raise CheckpointRefused(f"the chain ends at event {last_id}, but its head row says event {head_id}")
        if oldest_uncovered is not None:
            if final:
                plans.append(_Planned(position, last_id, running, "shutdown"))
            elif minutes is not None and now - oldest_uncovered >= timedelta(minutes=minutes):
                plans.append(_Planned(position, last_id, running, "time"))
        return plans

    # ---- Slack delivery queue --------------------------------------------------------------------------
    def claim_for_slack(self, *, hold: timedelta, limit: int = 20) -> list[Checkpoint]:
        """Checkpoints not yet posted whose retry time has come, each claimed for `hold` (so one replica posts
        it); oldest first."""
        now = as_utc(self.clock())
        due = (
            sa.select(checkpoints.c.seq)
            .where(checkpoints.c.slack_ts.is_(None))
            .where(sa.or_(checkpoints.c.slack_retry_at.is_(None), checkpoints.c.slack_retry_at <= now))
            .order_by(checkpoints.c.seq)
            .limit(limit)
        )
        claimed: list[Checkpoint] = []
        with self.db.begin() as conn:
            for seq in list(conn.execute(due).scalars()):
                taken = conn.execute(
                    sa.update(checkpoints)
                    .where(checkpoints.c.seq == seq)
                    .where(checkpoints.c.slack_ts.is_(None))
                    .where(sa.or_(checkpoints.c.slack_retry_at.is_(None), checkpoints.c.slack_retry_at <= now))
                    .values(slack_retry_at=now + hold, slack_attempts=checkpoints.c.slack_attempts + 1)
                )
                if taken.rowcount == 1:
                    record = conn.execute(sa.select(checkpoints.c.record).where(checkpoints.c.seq == seq)).scalar()
                    claimed.append(Checkpoint.from_json(str(record)))
        return claimed

    def mark_posted(self, seq: int, ts: str) -> None:
        with self.db.begin() as conn:
            conn.execute(sa.update(checkpoints).where(checkpoints.c.seq == seq).values(slack_ts=ts))

    def retry_later(self, seq: int, delay: timedelta) -> None:
        with self.db.begin() as conn:
            conn.execute(
                sa.update(checkpoints)
                .where(checkpoints.c.seq == seq)
                .values(slack_retry_at=as_utc(self.clock()) + delay)
            )


def chain_head_missing(db: Database) -> bool:
    """True when events exist but the chain head row does not (appends refuse then: see storage.audit)."""
    with db.begin(readonly=True) as conn:
        head = conn.execute(sa.select(chain_head.c.id).where(chain_head.c.id == HEAD_ID)).first()
        return head is None and conn.execute(sa.select(events.c.id).limit(1)).first() is not None


# ---- re-anchoring -----------------------------------------------------------------------------------------
def reanchor(log: AuditLog, *, actor_id: str, reason: str) -> tuple[int, str]:
    """Recreate a missing chain head from the newest event, then record that it was done (an audit event, so
    the re-anchoring is itself in the trail and in the next checkpoint). Returns the anchored (id, hash).

    Only for an operator who has verified the trail (against checkpoints) and accepts where it now ends.
    """
    with log.db.begin() as conn:
        if conn.execute(sa.select(chain_head.c.id).where(chain_head.c.id == HEAD_ID)).first() is not None:
            raise ValueError("the audit_chain_head row is present: nothing to re-anchor")
        last = conn.execute(sa.select(events.c.id, events.c.hash).order_by(events.c.id.desc()).limit(1)).first()
        anchored = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
        conn.execute(sa.insert(chain_head).values(id=HEAD_ID, last_id=anchored[0], last_hash=anchored[1]))
    log.append(
        AuditEntry(
            action=REANCHOR_ACTION,
            outcome="info",
            actor_id=actor_id,
            details={"anchored_event_id": anchored[0], "anchored_hash": anchored[1], "reason": reason},
        )
    )
    return anchored


# ---- verification -----------------------------------------------------------------------------------------
@dataclass
class CheckpointVerifyResult:
    ok: bool
    events: int  # events checked and found intact before the first problem
    checkpoints: int  # checkpoints read
    culprit: str | None  # "event 17", "checkpoint #4", "the chain head", "FILE line 3"
    reason: str
    notes: list[str] = field(default_factory=list)


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
        for row in rows:
            values = dict(zip(EXPORT_COLUMNS, row, strict=True))
            row_id = values["id"]
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
