"""Signed audit checkpoints: made once per boundary, witnessed in a file and in Slack, and `audit verify
--checkpoints` catching what someone with write access to the database can do to the trail.

Every tampering test first shows that the plain hash-chain verify is fooled (where it is), then that the
checkpoints are not, and which event or checkpoint verify names.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.audit_witness import NOT_WITNESSED, Witness
from bot.cli import main
from bot.config import ConfigError, load_settings
from devkit.fake_slack import FakeSlack, blocks_text
from storage.audit import GENESIS_HASH, AuditEntry, AuditLog, ChainHeadMissing, events, row_digest
from storage.checkpoints import (
    Checkpoint,
    CheckpointRefused,
    CheckpointStore,
    sign_checkpoint,
    verify_against_checkpoints,
)
from storage.db import Database
from storage.signing import Signer, generate_key_file, public_text
from tests.app_fixtures import ALICE, BOB, Harness
from tests.checkpoint_fixtures import EVERY, T0, Clock


def entries(count: int, start: int = 0) -> list[AuditEntry]:
    return [
        AuditEntry(action="list", outcome="ok", actor_id=f"U0USER{n % 7}", details={"n": n})
        for n in range(start, start + count)
    ]


class Trail:
    """250 events with checkpoints #1 (100 events), #2 (200) and #3 (250, at shutdown), written to a file."""

    def __init__(self, db: Database, clock: Clock, key: Signer, path: Path) -> None:
        self.db, self.key, self.file = db, key, path
        self.log = AuditLog(db, clock=clock)
        self.store = CheckpointStore(db, clock=clock)
        for final in (False, False, True):
            self.log.append_many(entries(100 if not final else 50), batch_size=10)
            self.store.create_due(key, every=EVERY, minutes=None, final=final)
        self.checkpoints = self.store.after(0)
        self.write(self.checkpoints)

    def write(self, checkpoints: list[Checkpoint]) -> None:
        self.file.write_text("".join(c.to_json() + "\n" for c in checkpoints))

    def lines(self) -> list[str]:
        return self.file.read_text().splitlines()

    def sql(self, *statements: str) -> None:
        with self.db.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    def rows(self) -> list[dict[str, object]]:
        with self.db.begin(readonly=True) as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(events).order_by(events.c.id))]

    def recompute_chain(self) -> None:
        """What an operator with write access does after editing: rehash every row and move the head."""
        running = GENESIS_HASH
        last_id = 0
        with self.db.begin() as conn:
            for row in [dict(r._mapping) for r in conn.execute(sa.select(events).order_by(events.c.id))]:
                row["prev_hash"] = running
                running = row_digest(row)
                last_id = int(row["id"])
                conn.execute(
                    sa.text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :i"),
                    {"p": row["prev_hash"], "h": running, "i": last_id},
                )
            conn.execute(
                sa.text("UPDATE audit_chain_head SET last_id = :i, last_hash = :h"), {"i": last_id, "h": running}
            )


@pytest.fixture
def trail(database: Database, clock: Clock, key: Signer, tmp_path: Path) -> Trail:
    return Trail(database, clock, key, tmp_path / "checkpoints.jsonl")


def verify(capsys: pytest.CaptureFixture[str], trail: Trail, *keys: str) -> tuple[int, str]:
    """`audit verify --checkpoints FILE --public-key …` as an auditor runs it, with only the public key."""
    key_args = [arg for text in (keys or (public_text(trail.key.public),)) for arg in ("--public-key", text)]
    code = main(["--database-url", trail.db.url, "audit", "verify", "--checkpoints", str(trail.file), *key_args])
    return code, capsys.readouterr().out


def plain_verify(capsys: pytest.CaptureFixture[str], trail: Trail) -> tuple[int, str]:
    code = main(["--database-url", trail.db.url, "audit", "verify"])
    return code, capsys.readouterr().out


@pytest.fixture(autouse=True)
def _no_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIT_VERIFY_KEYS", raising=False)
    monkeypatch.delenv("AUDIT_SIGNING_KEY", raising=False)


# ---- making checkpoints -----------------------------------------------------------------------------------
def test_checkpoints_are_signed_chained_and_cover_exact_boundaries(trail: Trail) -> None:
    first, second, third = trail.checkpoints
    assert [(c.seq, c.reason, c.chain_length, c.last_event_id) for c in trail.checkpoints] == [
        (1, "count", 100, 100),
        (2, "count", 200, 200),
        (3, "shutdown", 250, 250),
    ]
    assert first.prev_digest == GENESIS_HASH
    assert second.prev_digest == first.digest and third.prev_digest == second.digest
    assert {c.key_id for c in trail.checkpoints} == {trail.key.key_id}
    by_id = {row["id"]: row["hash"] for row in trail.rows()}
    assert [c.head_hash for c in trail.checkpoints] == [by_id[100], by_id[200], by_id[250]]
    record = json.loads(trail.lines()[0])
    assert set(record) == {
        "v", "seq", "reason", "created_at", "chain_length", "last_event_id", "head_hash", "prev_digest",
        "every", "key_id", "digest", "signature",
    }  # fmt: skip
    assert "PRIVATE" not in trail.file.read_text()


def test_an_intact_trail_verifies_with_only_the_public_key(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    trail.log.append_many(entries(5, start=250))  # events after the last checkpoint are fine, and reported
    code, out = verify(capsys, trail)
    assert code == 0, out
    assert "audit chain intact: 255 events, 3 checkpoints match" in out
    assert "note: 5 events after checkpoint #3 (event 250) are not covered by a checkpoint yet" in out


def test_nothing_is_due_until_a_boundary_or_the_time_has_come(database: Database, key: Signer) -> None:
    clock = Clock()
    log, store = AuditLog(database, clock=clock), CheckpointStore(database, clock=clock)
    log.append_many(entries(99))
    assert store.create_due(key, every=EVERY, minutes=15) == []
    clock.now += timedelta(minutes=15)  # the oldest uncovered event is now 15 minutes old
    (made,) = store.create_due(key, every=EVERY, minutes=15)
    assert (made.reason, made.chain_length) == ("time", 99)
    assert store.create_due(key, every=EVERY, minutes=15, final=True) == []  # nothing new: no empty checkpoint
    log.append_many(entries(250, start=99))  # crosses 100, 200 and 300: one checkpoint at each, exactly there
    assert [(c.reason, c.chain_length) for c in store.create_due(key, every=EVERY, minutes=15)] == [
        ("count", 100),
        ("count", 200),
        ("count", 300),
    ]


def test_two_replicas_make_each_checkpoint_exactly_once(database_url: str, database: Database, key: Signer) -> None:
    log = AuditLog(database)
    replicas = [CheckpointStore(Database(database_url)) for _ in range(2)]
    made: list[list[Checkpoint]] = [[], []]
    start = threading.Barrier(2)

    def replica(n: int) -> None:
        start.wait()
        for _ in range(30):
            made[n] += replicas[n].create_due(key, every=10, minutes=None)

    writer = threading.Thread(target=lambda: [log.append_many(entries(10, start=i * 10)) for i in range(30)])
    threads = [threading.Thread(target=replica, args=(n,)) for n in range(2)] + [writer]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    made[0] += replicas[0].create_due(key, every=10, minutes=None)
    for store in replicas:
        store.db.dispose()
    won = sorted(made[0] + made[1], key=lambda c: c.seq)
    stored = CheckpointStore(database).after(0)
    assert [c.seq for c in won] == [c.seq for c in stored] == list(range(1, 31))  # none twice, none lost
    assert [c.chain_length for c in stored] == list(range(10, 301, 10))
    assert [c.digest for c in won] == [c.digest for c in stored]
    assert verify_against_checkpoints(database, stored, [key.public]).ok


def test_the_signer_refuses_to_sign_a_chain_that_does_not_link(trail: Trail) -> None:
    trail.log.append_many(entries(120, start=250))
    trail.sql("UPDATE audit_events SET actor_id = 'U0MALLORY' WHERE id = 300")
    with pytest.raises(CheckpointRefused, match="event 300 does not link"):
        trail.store.create_due(trail.key, every=EVERY, minutes=None)
    assert [c.seq for c in trail.store.after(0)] == [1, 2, 3]


# ---- what verify catches ------------------------------------------------------------------------------------
def test_verify_names_an_edited_event(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    trail.sql("UPDATE audit_events SET actor_id = 'U0MALLORY' WHERE id = 150")
    assert verify(capsys, trail) == (1, "audit chain BROKEN at event 150: hash mismatch (edited?)\n")


def test_verify_names_rows_deleted_in_the_middle(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    trail.sql("DELETE FROM audit_events WHERE id BETWEEN 120 AND 130")
    code, out = verify(capsys, trail)
    assert (code, out) == (
        1,
        "audit chain BROKEN at event 131: prev_hash does not match event 119 (deleted or reordered?)\n",
    )


def test_verify_catches_a_deletion_in_the_middle_with_the_chain_recomputed(
    capsys: pytest.CaptureFixture[str], trail: Trail
) -> None:
    """The issue's case: erase a refusal, change an approver, recompute the chain: the plain verify says intact."""
    trail.sql(
        "DELETE FROM audit_events WHERE id = 170",
        "UPDATE audit_events SET actor_id = 'U0MALLORY' WHERE id = 171",
    )
    trail.recompute_chain()
    assert plain_verify(capsys, trail) == (0, "audit chain intact: 249 events\n")
    code, out = verify(capsys, trail)
    assert code == 1
    assert out == (
        "audit chain BROKEN at checkpoint #2: events up to 200 differ from what it signed: something after "
        "checkpoint #1 (event 100) was changed\n"
    )


def test_verify_catches_a_whole_chain_recomputed(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    trail.sql("UPDATE audit_events SET actor_id = 'U0MALLORY' WHERE id = 42")
    trail.recompute_chain()
    assert plain_verify(capsys, trail)[0] == 0
    code, out = verify(capsys, trail)
    assert code == 1 and out.startswith("audit chain BROKEN at checkpoint #1: events up to 100 differ")
    assert "from the start was changed" in out


def test_verify_catches_a_cut_tail_with_the_head_row_deleted(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    trail.sql("DELETE FROM audit_events WHERE id > 180", "DELETE FROM audit_chain_head")
    code, out = verify(capsys, trail)
    assert code == 1
    assert out == (
        "audit chain BROKEN at checkpoint #2: it covers 200 events up to event 200, but the table ends at event "
        "180 after 180 (newest events deleted?)\n"
    )
    # Without checkpoints the missing head row is a failure by itself.
    code, out = plain_verify(capsys, trail)
    assert code == 1 and "audit_chain_head row is missing" in out


def test_verify_catches_a_cut_tail_with_the_head_moved_back(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    hash_230 = next(row["hash"] for row in trail.rows() if row["id"] == 230)
    trail.sql(
        "DELETE FROM audit_events WHERE id > 230",
        f"UPDATE audit_chain_head SET last_id = 230, last_hash = '{hash_230}'",
    )
    assert plain_verify(capsys, trail) == (0, "audit chain intact: 230 events\n")  # fooled
    code, out = verify(capsys, trail)
    assert code == 1
    assert out.startswith("audit chain BROKEN at checkpoint #3: it covers 250 events up to event 250")


def test_verify_names_reordered_rows(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    rows = {row["id"]: row for row in trail.rows()}
    columns = [name for name in rows[60] if name != "id"]
    with trail.db.begin() as conn:
        for target, source in ((60, 61), (61, 60)):
            values = {name: rows[source][name] for name in columns}
            conn.execute(
                sa.text(f"UPDATE audit_events SET {', '.join(f'{c} = :{c}' for c in columns)} WHERE id = :id"),
                values | {"id": target},
            )
    code, out = verify(capsys, trail)
    assert (code, out) == (
        1,
        "audit chain BROKEN at event 60: prev_hash does not match event 59 (deleted or reordered?)\n",
    )


def test_verify_names_an_edited_checkpoint(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    lines = trail.lines()
    record = json.loads(lines[1])
    record["head_hash"] = trail.rows()[198]["hash"]  # point it at another event's hash
    lines[1] = json.dumps(record)
    trail.file.write_text("\n".join(lines) + "\n")
    assert verify(capsys, trail) == (
        1,
        "audit chain BROKEN at checkpoint #2: its digest does not match its contents (edited?)\n",
    )


def test_verify_names_a_forged_checkpoint(capsys: pytest.CaptureFixture[str], trail: Trail, tmp_path: Path) -> None:
    """Re-signed with the forger's own key, or with a correct digest but a made-up signature."""
    forger = generate_key_file(tmp_path / "forger.pem")
    original = trail.checkpoints
    fake = sign_checkpoint(
        forger,
        seq=2,
        reason="count",
        created_at=T0,
        chain_length=200,
        last_event_id=200,
        head_hash="f" * 64,
        prev_digest=original[0].digest,
        every=EVERY,
    )
    trail.write([original[0], fake, original[2]])
    code, out = verify(capsys, trail)
    assert code == 1
    assert out == (
        f"audit chain BROKEN at checkpoint #2: signed with key {forger.key_id}, which is not among the trusted "
        "public keys\n"
    )
    from dataclasses import replace

    borrowed = replace(fake, key_id=trail.key.key_id)
    borrowed = replace(borrowed, digest=__import__("hashlib").sha256(borrowed.signed_bytes()).hexdigest())
    trail.write([original[0], borrowed, original[2]])
    assert verify(capsys, trail) == (1, "audit chain BROKEN at checkpoint #2: bad signature (forged or edited?)\n")


def test_verify_names_a_missing_checkpoint(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    lines = trail.lines()
    trail.file.write_text(lines[0] + "\n" + lines[2] + "\n")
    assert verify(capsys, trail) == (1, "audit chain BROKEN at checkpoint #2: missing (the next one found is #3)\n")
    trail.file.write_text(lines[1] + "\n" + lines[2] + "\n")
    assert verify(capsys, trail) == (1, "audit chain BROKEN at checkpoint #1: missing (the next one found is #2)\n")


def test_verify_names_a_forked_checkpoint_and_a_broken_file_line(
    capsys: pytest.CaptureFixture[str], trail: Trail
) -> None:
    other = sign_checkpoint(
        trail.key,
        seq=3,
        reason="time",
        created_at=T0,
        chain_length=240,
        last_event_id=240,
        head_hash=trail.rows()[239]["hash"],
        prev_digest=trail.checkpoints[1].digest,
        every=EVERY,
    )
    trail.write([*trail.checkpoints, other])
    assert verify(capsys, trail) == (
        1,
        "audit chain BROKEN at checkpoint #3: two different checkpoints carry this number (forked?)\n",
    )
    trail.file.write_text(trail.lines()[0] + "\nnot json\n")
    assert verify(capsys, trail) == (1, f"audit checkpoints BROKEN at {trail.file} line 2: not JSON\n")


def test_key_rotation_old_checkpoints_verify_with_the_old_public_key(
    capsys: pytest.CaptureFixture[str], trail: Trail, tmp_path: Path
) -> None:
    old_key = trail.key
    new_key = generate_key_file(tmp_path / "new.pem")
    trail.log.append_many(entries(100, start=250))
    (rotated,) = trail.store.create_due(new_key, every=EVERY, minutes=None)
    assert (rotated.seq, rotated.key_id, rotated.chain_length) == (4, new_key.key_id, 300)
    assert rotated.prev_digest == trail.checkpoints[-1].digest  # the chain of checkpoints goes on across keys
    trail.write(trail.store.after(0))
    both = (public_text(old_key.public), public_text(new_key.public))
    code, out = verify(capsys, trail, *both)
    assert code == 0 and "350 events, 4 checkpoints match" in out
    code, out = verify(capsys, trail, both[1])
    assert code == 1
    assert out == (
        f"audit chain BROKEN at checkpoint #1: signed with key {old_key.key_id}, which is not among the trusted "
        "public keys\n"
    )
    # AUDIT_VERIFY_KEYS (comma-separated) is read as well, e.g. when run as `python -m bot.cli`.
    os.environ["AUDIT_VERIFY_KEYS"] = ",".join(both)
    try:
        code = main(["--database-url", trail.db.url, "audit", "verify", "--checkpoints", str(trail.file)])
    finally:
        del os.environ["AUDIT_VERIFY_KEYS"]
    assert code == 0 and "4 checkpoints match" in capsys.readouterr().out


# ---- the missing chain head ---------------------------------------------------------------------------------
def test_a_deleted_head_stops_appends_until_an_operator_reanchors(
    capsys: pytest.CaptureFixture[str], trail: Trail
) -> None:
    trail.sql("DELETE FROM audit_chain_head")
    with pytest.raises(ChainHeadMissing):
        trail.log.append(AuditEntry(action="list", outcome="ok", actor_id=ALICE))
    args = ["--database-url", trail.db.url, "audit", "reanchor", "--by", "U0ADMIN", "--reason", "restored backup"]
    code = main([*args, "--checkpoints", str(trail.file), "--public-key", public_text(trail.key.public)])
    out = capsys.readouterr().out
    assert code == 0 and "re-anchored at event 250" in out
    record = trail.log.query(limit=1)[0]
    assert (record.action, record.actor_id, record.details["anchored_event_id"]) == ("audit.reanchored", "U0ADMIN", 250)
    assert plain_verify(capsys, trail)[0] == 0
    assert main(args) == 1  # nothing left to re-anchor
    assert "nothing to re-anchor" in capsys.readouterr().out


def test_reanchor_refuses_when_checkpoints_show_a_cut_tail(capsys: pytest.CaptureFixture[str], trail: Trail) -> None:
    trail.sql("DELETE FROM audit_events WHERE id > 240", "DELETE FROM audit_chain_head")
    code = main(
        ["--database-url", trail.db.url, "audit", "reanchor", "--reason", "x", "--checkpoints", str(trail.file),
         "--public-key", public_text(trail.key.public)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and "refusing to re-anchor" in out and "checkpoint #3" in out
    with trail.db.begin(readonly=True) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_chain_head").scalar() == 0


# ---- keys and settings --------------------------------------------------------------------------------------
def test_keygen_writes_a_private_key_0600_and_prints_the_public_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "audit.pem"
    code = main(["--database-url", f"sqlite:///{tmp_path / 'x.db'}", "audit", "keygen", "--out", str(out_file)])
    out = capsys.readouterr().out
    assert code == 0
    assert out_file.stat().st_mode & 0o777 == 0o600
    settings = load_settings({"AUDIT_SIGNING_KEY": str(out_file)}, dotenv_path=None)
    witness_key = Witness.from_settings(Database("sqlite://"), settings, None)
    assert witness_key is not None
    assert f"key id:     {witness_key.signer.key_id}" in out
    assert f"public key: {public_text(witness_key.signer.public)}" in out
    assert "BEGIN" not in out
    code = main(["--database-url", f"sqlite:///{tmp_path / 'x.db'}", "audit", "keygen", "--out", str(out_file)])
    assert code == 2 and "never overwrites" in capsys.readouterr().err


def test_settings_reject_a_bad_key_without_showing_it(tmp_path: Path, key: Signer) -> None:
    secret_text = "-----BEGIN PRIVATE KEY-----\nTOPSECRETNOTAKEY\n-----END PRIVATE KEY-----"
    with pytest.raises(ConfigError) as caught:
        load_settings({"AUDIT_SIGNING_KEY": secret_text}, dotenv_path=None)
    assert "TOPSECRET" not in str(caught.value) and "AUDIT_SIGNING_KEY" in str(caught.value)
    with pytest.raises(ConfigError, match="AUDIT_VERIFY_KEYS"):
        load_settings({"AUDIT_VERIFY_KEYS": "ed25519:notbase64!"}, dotenv_path=None)
    pem = (tmp_path / "signing.pem").read_text()
    settings = load_settings(
        {"AUDIT_SIGNING_KEY": pem, "AUDIT_VERIFY_KEYS": public_text(key.public), "AUDIT_CHECKPOINT_EVERY": "50"},
        dotenv_path=None,
    )
    assert settings.audit_checkpoint_every == 50 and settings.audit_checkpoint_minutes == 15
    assert "BEGIN" not in repr(settings)


# ---- the bot: witnessing in Slack and in a file ---------------------------------------------------------------
WITNESS_CHANNEL = "C0AUDITW"


@pytest.fixture
def witnessed(make_harness: Callable[..., Harness], tmp_path: Path, key: Signer) -> Harness:
    return make_harness(
        AUDIT_SIGNING_KEY=str(tmp_path / "signing.pem"),
        AUDIT_CHECKPOINT_EVERY="3",
        AUDIT_CHECKPOINT_CHANNEL=WITNESS_CHANNEL,
        AUDIT_CHECKPOINT_FILE=str(tmp_path / "witness.jsonl"),
    )


def posted_records(slack: FakeSlack) -> list[Checkpoint]:
    found = []
    for message in slack.messages(WITNESS_CHANNEL):
        text = message.text
        found.append(Checkpoint.from_json(text[text.index("`{") + 1 : text.rindex("}`") + 1]))
    return found


def test_the_bot_posts_and_files_checkpoints_and_verify_accepts_both(
    capsys: pytest.CaptureFixture[str], witnessed: Harness, tmp_path: Path, key: Signer
) -> None:
    for _ in range(4):
        witnessed.run("list")
    witness = witnessed.bot.witness
    made = witness.run_once()
    assert [c.reason for c in made] and all(c.reason == "count" for c in made)
    file_records = [Checkpoint.from_json(line) for line in (tmp_path / "witness.jsonl").read_text().splitlines()]
    assert [c.seq for c in file_records] == [c.seq for c in made]
    assert posted_records(witnessed.slack) == file_records
    assert "Audit checkpoint #1 (count): 3 events" in witnessed.slack.messages(WITNESS_CHANNEL)[0].text
    witnessed.bot.close()  # graceful shutdown: what is not covered yet gets a checkpoint, posted and filed
    final = Checkpoint.from_json((tmp_path / "witness.jsonl").read_text().splitlines()[-1])
    assert final.reason == "shutdown"
    assert posted_records(witnessed.slack)[-1] == final
    url = witnessed.bot.settings.database_url
    code = main(["--database-url", url, "audit", "verify", "--checkpoints", str(tmp_path / "witness.jsonl"),
                 "--public-key", public_text(key.public)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "checkpoints match" in out and "not covered" not in out


def test_a_failed_post_is_retried_and_never_blocks_commands(witnessed: Harness, tmp_path: Path) -> None:
    for _ in range(3):
        witnessed.run("list")
    assert witnessed.last_ephemeral().visible_text  # the user got the answer
    witnessed.slack.fail_next("chat.postMessage", error="not_in_channel")
    witness = witnessed.bot.witness
    (made,) = witness.run_once()
    assert witnessed.slack.messages(WITNESS_CHANNEL) == []
    assert (tmp_path / "witness.jsonl").read_text().count("\n") == 1  # the file does not wait for Slack
    witness.run_once()
    assert witnessed.slack.messages(WITNESS_CHANNEL) == []  # not before its retry time
    with witnessed.bot.core.db.begin() as conn:  # the retry time has come
        conn.exec_driver_sql("UPDATE audit_checkpoints SET slack_retry_at = NULL")
    witness.run_once()
    assert posted_records(witnessed.slack) == [made]
    assert (tmp_path / "witness.jsonl").read_text().count("\n") == 1  # not filed twice


def test_two_processes_sharing_the_file_never_duplicate_a_checkpoint(
    database: Database, key: Signer, tmp_path: Path
) -> None:
    settings = load_settings(
        {"AUDIT_SIGNING_KEY": str(tmp_path / "signing.pem"), "AUDIT_CHECKPOINT_EVERY": "5",
         "AUDIT_CHECKPOINT_FILE": str(tmp_path / "shared.jsonl")},
        dotenv_path=None,
    )  # fmt: skip
    witnesses = [Witness(database, settings, key, None) for _ in range(2)]
    log = AuditLog(database)
    for round_no in range(6):
        log.append_many(entries(5, start=round_no * 5))
        for witness in witnesses:
            witness.run_once()
    seqs = [json.loads(line)["seq"] for line in (tmp_path / "shared.jsonl").read_text().splitlines()]
    assert seqs == list(range(1, 7))


def test_help_tells_admins_when_the_trail_is_not_witnessed(
    make_harness: Callable[..., Harness], tmp_path: Path, key: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    plain = make_harness(SNAPSHOT_ADMINS=ALICE, SNAPSHOT_OPERATORS=BOB)
    shown = blocks_text(plain.command("help", user=ALICE).json()["blocks"])
    assert "The audit trail is not witnessed" in shown and "audit keygen" in shown
    assert "not witnessed" not in blocks_text(plain.command("help", user=BOB).json()["blocks"])
    from bot.server import warn_about_audit_witness

    with caplog.at_level(logging.INFO, logger="bot.server"):
        warn_about_audit_witness(plain.bot)
    assert NOT_WITNESSED in caplog.text
    signed = make_harness(
        database_url=f"sqlite:///{tmp_path / 'signed.db'}",
        SNAPSHOT_ADMINS=ALICE,
        AUDIT_SIGNING_KEY=str(tmp_path / "signing.pem"),
    )
    assert "not witnessed" not in blocks_text(signed.command("help", user=ALICE).json()["blocks"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot.server"):
        warn_about_audit_witness(signed.bot)
    assert f"signed with key {key.key_id}" in caplog.text and "stay in the database" in caplog.text


def test_startup_says_loudly_when_the_chain_head_is_missing(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.run("list")
    with harness.bot.core.db.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_chain_head")
    from bot.server import warn_about_audit_witness

    with caplog.at_level(logging.ERROR, logger="bot.server"):
        warn_about_audit_witness(harness.bot)
    assert "AUDIT CHAIN HEAD IS MISSING" in caplog.text


def test_checkpoints_collected_from_slack_verify_and_an_edited_message_is_flagged(
    capsys: pytest.CaptureFixture[str],
    witnessed: Harness,
    tmp_path: Path,
    key: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.__main__ import main as bot_main
    from devkit.local import local_env

    for _ in range(7):
        witnessed.run("list")
    witnessed.bot.witness.run_once()
    witnessed.bot.slack.client.chat_postMessage(channel=WITNESS_CHANNEL, text="a note from the bot, not a checkpoint")
    settings = witnessed.bot.settings
    env = local_env(witnessed.slack, witnessed.sim, settings.database_url, AUDIT_CHECKPOINT_CHANNEL=WITNESS_CHANNEL)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    collected = tmp_path / "from-slack.jsonl"
    assert bot_main(["audit", "checkpoints", "--from-slack", "--out", str(collected)]) == 0
    assert "wrote 2 checkpoints" in capsys.readouterr().err
    public = ["--public-key", public_text(key.public)]
    assert bot_main(["audit", "verify", "--checkpoints", str(collected), *public]) == 0
    assert "2 checkpoints match" in capsys.readouterr().out

    # Whoever holds the bot token can edit the bot's messages; Slack marks them edited, and verify says so.
    first = witnessed.slack.messages(WITNESS_CHANNEL)[0]
    witnessed.bot.slack.client.chat_update(channel=WITNESS_CHANNEL, ts=first.ts, text=first.text)
    assert bot_main(["audit", "checkpoints", "--from-slack", "--out", str(collected)]) == 0
    assert "1 edited in Slack" in capsys.readouterr().err
    assert bot_main(["audit", "verify", "--checkpoints", str(collected), *public]) == 1
    assert capsys.readouterr().out == (
        "audit chain BROKEN at checkpoint #1: its Slack message was edited after posting\n"
    )


def test_checkpoint_rows_deleted_in_the_database_show_up_as_a_fork(
    capsys: pytest.CaptureFixture[str],
    database: Database,
    key: Signer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The operator wipes the checkpoint table so the bot signs afresh: the file keeps the originals."""
    path = tmp_path / "witness.jsonl"
    settings = load_settings(
        {"AUDIT_SIGNING_KEY": str(tmp_path / "signing.pem"), "AUDIT_CHECKPOINT_EVERY": "5",
         "AUDIT_CHECKPOINT_FILE": str(path)},
        dotenv_path=None,
    )  # fmt: skip
    witness, log = Witness(database, settings, key, None), AuditLog(database, clock=Clock())
    log.append_many(entries(10))
    witness.run_once()
    with database.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_checkpoints")
    log.append_many(entries(5, start=10))
    with caplog.at_level(logging.ERROR, logger="bot.audit_witness"):
        witness.run_once()
    assert "AUDIT CHECKPOINTS FORKED: #3 in the database does not follow #2" in caplog.text
    code = main(["--database-url", database.url, "audit", "verify", "--checkpoints", str(path),
                 "--public-key", public_text(key.public)])  # fmt: skip
    assert code == 1
    assert capsys.readouterr().out == (
        "audit chain BROKEN at checkpoint #3: does not follow checkpoint #2 (prev_digest differs)\n"
    )


def test_with_the_chain_head_missing_users_are_told_and_nothing_is_done(harness: Harness) -> None:
    harness.run("list")
    with harness.bot.core.db.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_chain_head")
    harness.run("create 12345 before-upgrade")
    assert "the audit trail's chain head is missing" in harness.last_ephemeral().visible_text
    assert harness.mutating_calls() == []


def test_the_witness_thread_checkpoints_on_its_own(database: Database, key: Signer, tmp_path: Path) -> None:
    path = tmp_path / "witness.jsonl"
    settings = load_settings(
        {"AUDIT_SIGNING_KEY": str(tmp_path / "signing.pem"), "AUDIT_CHECKPOINT_EVERY": "10",
         "AUDIT_CHECKPOINT_FILE": str(path)},
        dotenv_path=None,
    )  # fmt: skip
    witness = Witness(database, settings, key, None, poll_seconds=0.05)
    witness.start()
    try:
        AuditLog(database).append_many(entries(25))
        deadline = time.monotonic() + 20
        while not (path.exists() and path.read_text().count("\n") == 2):
            assert time.monotonic() < deadline, "the witness thread made no checkpoints"
            time.sleep(0.05)
    finally:
        witness.stop(final=True)  # shutdown covers the last 5
    assert [json.loads(line)["chain_length"] for line in path.read_text().splitlines()] == [10, 20, 25]
