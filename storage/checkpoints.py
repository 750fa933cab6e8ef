"""Making signed checkpoints of the audit chain, their delivery queue, and re-anchoring a lost chain head.

Rules this module keeps:
- Checkpoints are made at every multiple of `every` events ("count"), when the oldest event not yet covered is
  `minutes` old ("time"), and at graceful shutdown ("shutdown").
- The signer never signs what it has not checked: the events since the previous checkpoint must link to it and
  end at the chain head, or nothing is signed (`CheckpointRefused`).
- `seq` is the table's primary key, so of several replicas reaching the same boundary exactly one inserts; the
  others hit the conflict and sign nothing. The table is only the delivery queue: verification trusts the
  records an auditor brings (AUDIT_CHECKPOINT_FILE, the Slack channel) and the public keys, never this table.
- Re-anchoring recreates a missing chain head only on an operator's word, and records that it did.
- Nothing here updates or deletes an audit event.
The record format and signing are in storage.checkpoint_format, checking the chain against checkpoints in
storage.checkpoint_verify; their public names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage.audit import (
    EXPORT_COLUMNS,
    GENESIS_HASH,
    HEAD_ID,
    Action,
    AuditEntry,
    AuditLog,
    ChainHeadMissing,
    row_digest,
)
from storage.audit_seal import UNSEALED, SealRefused, seal_pending
from storage.checkpoint_format import (
    FORMAT_VERSION,
    PAYLOAD_FIELDS,
    REASONS,
    Checkpoint,
    CheckpointFormatError,
    parse_lines,
    sign_checkpoint,
)
from storage.checkpoint_verify import CheckpointVerifyResult, check_records, verify_against_checkpoints
from storage.db import Database, as_utc, utcnow
from storage.models import AuditChainHead, AuditCheckpoint, AuditEvent
from storage.signing import Signer

__all__ = [
    "FORMAT_VERSION",
    "PAYLOAD_FIELDS",
    "REANCHOR_ACTION",
    "REASONS",
    "Checkpoint",
    "CheckpointFormatError",
    "CheckpointRefused",
    "CheckpointStore",
    "CheckpointVerifyResult",
    "chain_head_missing",
    "check_records",
    "parse_lines",
    "reanchor",
    "sign_checkpoint",
    "verify_against_checkpoints",
]

REANCHOR_ACTION = Action.AUDIT_REANCHORED

events = AuditEvent.__table__
chain_head = AuditChainHead.__table__
checkpoints = AuditCheckpoint.__table__
_EVENT_COLUMNS = [events.c[name] for name in EXPORT_COLUMNS]
_STREAM_ABOVE = 2000  # events: a walk longer than this is streamed in batches of this size


class CheckpointRefused(RuntimeError):
    """The chain does not link up to its head or to the previous checkpoint: signing it would bless tampering."""


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

    def pending(self, seq: int, limit: int = 1000) -> tuple[list[Checkpoint], int]:
        """Checkpoints numbered above `seq`, in order, and the newest number stored (0 for none); one read
        transaction (for the file writer, every round)."""
        stmt = sa.select(checkpoints.c.record).where(checkpoints.c.seq > seq).order_by(checkpoints.c.seq).limit(limit)
        with self.db.begin(readonly=True) as conn:
            fresh = [Checkpoint.from_json(record) for record in conn.execute(stmt).scalars()]
            if fresh:
                return fresh, fresh[-1].seq
            newest = conn.execute(sa.select(sa.func.max(checkpoints.c.seq))).scalar()
        return fresh, int(newest or 0)

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
        try:  # what is committed but not sealed yet can only be covered once sealed (storage.audit_seal)
            seal_pending(self.db, wait=final)
        except (SealRefused, ChainHeadMissing) as error:
            raise CheckpointRefused(str(error)) from error
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
            if not final and not self._may_be_due(conn, after_id, head_id, covered, every, minutes, now):
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
    def _may_be_due(
        conn: sa.Connection,
        after_id: int,
        head_id: int,
        covered: int,
        every: int,
        minutes: float | None,
        now: datetime,
    ) -> bool:
        """Whether a checkpoint can be due, without walking the events: False only when it certainly is not.

        Ids only grow, so at most `head_id - after_id` events follow the previous checkpoint; if even that many
        do not reach the next multiple of `every`, no count checkpoint is due, and the time rule needs only the
        age of the first event after the previous checkpoint (one indexed read). Nothing is signed on this
        path; whenever a checkpoint may be due, `_plan` walks and checks every event since the previous
        checkpoint as before, so a chain edited since an earlier round is still refused before anything is
        signed.
        """
        if covered + (head_id - after_id) >= (covered // every + 1) * every:
            return True
        if minutes is None:
            return False
        first = conn.execute(
            sa.select(events.c.created_at).where(events.c.id > after_id).order_by(events.c.id).limit(1)
        ).scalar()
        # No event at all after the previous checkpoint, yet the head is past it: let the walk refuse that.
        return first is None or now - as_utc(first) >= timedelta(minutes=minutes)

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
        # A few thousand rows (the usual round) are fetched at once; a long unwitnessed stretch is streamed, so
        # memory stays bounded (on PostgreSQL a server-side cursor, which costs extra round trips per walk).
        if head_id - after_id > _STREAM_ABOVE:
            conn = conn.execution_options(yield_per=_STREAM_ABOVE)
        rows = conn.execute(stmt.order_by(events.c.id))
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
        newest_sealed = sa.select(events.c.id, events.c.hash).where(events.c.hash != UNSEALED)
        last = conn.execute(newest_sealed.order_by(events.c.id.desc()).limit(1)).first()
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
