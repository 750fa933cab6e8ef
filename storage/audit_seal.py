"""Sealing on PostgreSQL: appends commit unsealed rows side by side; one sealer chains them moments later.

Holding the chain head row lock through every append's commit (its WAL flush) made writers queue behind each
other, so adding replicas lowered throughput (issue 27 §4). On PostgreSQL an append now writes its row
*unsealed* and commits it without waiting for any other writer; a sealer links committed rows into the chain.

Rules this module keeps:
- An unsealed row has `prev_hash` and `hash` empty (`UNSEALED`); its id (the table's sequence), timestamp and
  every other column are final when it commits, so the intent row is durable before the call it announces.
- Every appending transaction holds the schema's *append lock* (shared) from before it draws its id until it
  ends. The sealer reads the sequence, then waits for the transactions holding the lock at that moment to end
  (a barrier that blocks no one): every id up to that value then belongs to a transaction that has ended, so
  the rows it seals up to there are all there will ever be; a later append draws a higher id. So the bot never
  puts a row into the sealed past, and a row written there behind its back is unsealed (or does not link)
  below the head: verify reports it as broken.
- One sealer at a time, across threads, processes and replicas: a transaction-level advisory lock (the *seal
  lock*) for the whole round. Both locks are keyed by the schema, so schemas sharing a database do not meet.
- The sealer seals in id order, only rows above the chain head, fills only the two seal columns of a row that is
  still unsealed (`WHERE hash = ''`), and moves the head in the same transaction. It never changes anything else.
- A seal is derived data: it commits without waiting for its WAL flush (a crash can only undo the newest seal,
  which the next round recomputes identically; a checkpoint's durable commit flushes the seals it covers first).
- SQLite has one writer at a time anyway: appends there are sealed as they are written (storage.audit_chain).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.audit_chain import HEAD_ID, ChainHeadMissing, lock_head
from storage.audit_rows import _SELECT_COLUMNS, EXPORT_COLUMNS, chain_head, events, row_digest
from storage.db import Database

log = logging.getLogger(__name__)

UNSEALED = ""  # prev_hash and hash of a row committed but not yet chained
SEAL_BATCH = 5000  # rows sealed per round at most; a backlog takes several rounds
ROUND_SECONDS = 0.05  # a sealer thread starts rounds at most this often: each barrier pauses appends briefly
BARRIER_WAIT_SECONDS = 5.0  # an append still open after this long is left for a later round
IDLE_EXIT_SECONDS = 2.0  # a sealer thread with nothing to do for this long ends (the next append starts one)

_APPEND_KEY = "hashtextextended(current_schema() || '/snapshot-bot audit append', 0)"
_SEAL_KEY = "hashtextextended(current_schema() || '/snapshot-bot audit seal', 0)"
_SEQUENCE = "pg_get_serial_sequence('audit_events', 'id')"


def defers_sealing(conn: Connection) -> bool:
    """Whether appends on this connection's database are written unsealed (PostgreSQL) or sealed at once."""
    return conn.dialect.name == "postgresql"


def insert_unsealed(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` unsealed in the caller's transaction, holding the append lock (shared) until it ends.

    `rows` carry their timestamps; their ids are filled in here. Refuses (`ChainHeadMissing`) when the chain
    head row is gone while events exist, as a sealed append would.
    """
    head = conn.execute(
        sa.text(f"SELECT pg_advisory_xact_lock_shared({_APPEND_KEY}), (SELECT 1 FROM audit_chain_head WHERE id = 1)")
    ).first()
    if head is None or head[1] is None:
        lock_head(conn)  # raises ChainHeadMissing with events present; creates the head on an empty table
    for row in rows:
        row["prev_hash"] = row["hash"] = UNSEALED
    ids = conn.execute(sa.insert(events).returning(events.c.id, sort_by_parameter_order=True), rows).scalars().all()
    for row, row_id in zip(rows, ids, strict=True):
        row["id"] = row_id


def hold_appends(conn: Connection) -> None:
    """Make every append wait until the caller's transaction ends (the append lock, exclusively)."""
    if defers_sealing(conn):
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_APPEND_KEY})"))


_HOLDERS = f"""
    SELECT l.virtualtransaction FROM pg_locks AS l
    CROSS JOIN (SELECT {_APPEND_KEY} AS k) AS key
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = ((key.k >> 32) & 4294967295)::oid AND l.objid = (key.k & 4294967295)::oid
"""


def _horizon(conn: Connection) -> int | None:
    """The barrier: the highest id handed out so far (0 for none), once every append that could hold an id up
    to it has ended; None if some append took longer than BARRIER_WAIT_SECONDS (try again next round).

    Appends take the append lock before they draw an id, so every transaction holding an id up to the value read
    first is among the lock's holders read next. The sealer waits for those transactions only (by their virtual
    transaction ids in pg_locks); it takes no lock itself, so new appends never wait for the sealer.
    """
    name = conn.execute(sa.text(f"SELECT {_SEQUENCE}")).scalar()
    value = conn.execute(sa.text(f"SELECT last_value, is_called FROM {name}")).first()
    horizon = int(value[0]) if value is not None and value[1] else 0
    holders = list(conn.execute(sa.text(_HOLDERS)).scalars())
    if not holders:
        return horizon
    still = sa.text(f"SELECT count(*) FROM ({_HOLDERS}) AS h WHERE h.virtualtransaction = ANY(:holders)")
    give_up = time.monotonic() + BARRIER_WAIT_SECONDS
    while conn.execute(still, {"holders": holders}).scalar():
        if time.monotonic() >= give_up:
            return None
        time.sleep(0.001)
    return horizon


def unsealed_problem(values: dict[str, Any], head: Any) -> str | None:
    """For a chain walk: what is wrong with this row's seal state, given the chain head (None: nothing).

    Unsealed rows above the head are the newest appends, sealed moments from now (a walk skips them, and they
    must not be followed by a sealed row, which the head check catches). Unsealed at or below the head means a
    row put into the sealed past: the bot never does that (the sealer's barrier), so someone else did."""
    if values["hash"] != UNSEALED and values["prev_hash"] != UNSEALED:
        return None
    if values["hash"] != UNSEALED or values["prev_hash"] != UNSEALED:
        return "half sealed (edited?)"
    if head is not None and int(values["id"]) <= int(head[0]):
        return (
            f"not sealed, yet inside the sealed chain (which ends at row {int(head[0])}): "
            "inserted into the sealed past?"
        )
    return None


def unsealed_note(unsealed: int) -> str:
    """What a walk says about the newest rows not sealed yet (nothing when there are none)."""
    if not unsealed:
        return ""
    return f" (and {unsealed} newer events not sealed into the chain yet: the bot seals them within moments)"


class SealRefused(RuntimeError):
    """A row above the chain head is already sealed: someone wrote into the chain behind the sealer's back."""


def seal_pending(db: Database, *, wait: bool = False) -> int | None:
    """Chain every committed unsealed row into the hash chain; returns how many were sealed.

    Returns None when another sealer holds the seal lock and `wait` is false (it will seal what was committed
    before its barrier; what came later needs another round). On SQLite there is never anything to seal.
    """
    if db.dialect != "postgresql":
        return 0
    sealed = 0
    while True:
        with db.begin() as conn:
            lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
            got = conn.execute(sa.text(f"SELECT {lock}({_SEAL_KEY})")).scalar()
            if got is False:
                return None
            # A seal is recomputed identically from the rows if a crash loses it, and every later durable
            # commit (a checkpoint's, an append's) flushes it first: it need not wait for its own WAL flush.
            conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
            horizon = _horizon(conn)
            if horizon is None:
                return sealed if sealed else None
            count = _seal_up_to(conn, horizon)
        sealed += count
        if count < SEAL_BATCH:
            return sealed


def _seal_up_to(conn: Connection, horizon: int) -> int:
    head = conn.execute(
        sa.select(chain_head.c.last_id, chain_head.c.last_hash).where(chain_head.c.id == HEAD_ID).with_for_update()
    ).first()
    if head is None:
        if conn.execute(sa.select(events.c.id).limit(1)).first() is not None:
            raise ChainHeadMissing("the audit_chain_head row is missing: nothing is sealed until it is re-anchored")
        return 0
    last_id, last_hash = int(head[0]), str(head[1])
    rows = conn.execute(
        sa.select(*_SELECT_COLUMNS)
        .where(events.c.id > last_id)
        .where(events.c.id <= horizon)
        .order_by(events.c.id)
        .limit(SEAL_BATCH)
    ).all()
    if not rows:
        return 0
    ids, prevs, hashes = [], [], []
    for row in rows:
        values = dict(zip(EXPORT_COLUMNS, row, strict=True))
        if values["hash"] != UNSEALED:
            raise SealRefused(
                f"audit event {values['id']} is above the chain head (event {last_id}) yet already sealed: "
                "written behind the bot's back? Nothing more is sealed; run `python -m bot audit verify`"
            )
        values["prev_hash"] = last_hash
        last_hash = row_digest(values)
        last_id = int(values["id"])
        ids.append(last_id)
        prevs.append(values["prev_hash"])
        hashes.append(last_hash)
    done = conn.execute(
        sa.text(
            "UPDATE audit_events AS e SET prev_hash = v.p, hash = v.h "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:prevs AS text[]), CAST(:hashes AS text[])) AS v(id, p, h) "
            "WHERE e.id = v.id AND e.hash = ''"
        ),
        {"ids": ids, "prevs": prevs, "hashes": hashes},
    ).rowcount
    if done != len(ids):  # another writer of seal columns: impossible under the seal lock, unless by hand
        raise SealRefused(f"sealed {done} of {len(ids)} audit events: some changed under the sealer")
    conn.execute(sa.update(chain_head).where(chain_head.c.id == HEAD_ID).values(last_id=last_id, last_hash=last_hash))
    return len(ids)


class Sealer:
    """The background sealer of one AuditLog: a thread woken by appends, ended when idle for a while.

    Woken after each append commits, it runs a round at most every ROUND_SECONDS, so a busy moment's appends are
    sealed together. When another sealer (another replica) holds the seal lock it tries again a round later,
    since rows committed after that sealer's barrier are left for a later round.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._wake = threading.Event()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        """Seal soon: what was committed before this call is sealed within a round or two."""
        if self._pid != os.getpid():  # a forked worker (gunicorn): the parent's thread did not come along
            self._reset()
        with self._mutex:
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._wake.wait(IDLE_EXIT_SECONDS):
                with self._mutex:
                    if not self._wake.is_set():
                        self._thread = None
                        return
            self._wake.clear()
            started = time.monotonic()
            try:
                done = seal_pending(self.db)
            except Exception as error:  # the next append (or the witness, or shutdown) tries again
                log.warning("audit sealing failed: %s: %s", type(error).__name__, error)
                with self._mutex:
                    self._thread = None
                return
            if done is None:
                self._wake.set()
            time.sleep(max(0.0, ROUND_SECONDS - (time.monotonic() - started)))
