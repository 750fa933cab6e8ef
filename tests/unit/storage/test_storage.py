"""storage.db: migrations, transactions, timestamps, SQLite locking and PostgreSQL reconnection."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.audit import GENESIS_HASH
from storage.db import Database, normalize_url, safe_url
from storage.models import ApprovalRequest, AuditChainHead, Base, ProcessedDelivery

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _request(**overrides: object) -> ApprovalRequest:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    values: dict[str, object] = {
        "kind": "restore",
        "state": "pending",
        "requester_id": "U0ALICE",
        "requester_name": "alice",
        "snapshot_id": 7,
        "snapshot_name": "nightly",
        "snapshot_status": "available",
        "snapshot_description": "",
        "server_id": 42,
        "server_name": "web-1",
        "approvals_required": 0,
        "created_at": now,
        "expires_at": now + timedelta(hours=1),
        "reason": "",
        "result_message": "",
        "updated_at": now,
    }
    values.update(overrides)
    return ApprovalRequest(**values)


# ---- migrations --------------------------------------------------------------------------------------------
def test_upgrade_creates_exactly_the_models_schema_and_needs_upgrade_flips(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert db.needs_upgrade() is True
        db.upgrade()
        assert db.needs_upgrade() is False
        assert db.current_revision() == db.head_revision() is not None  # the newest migration, whichever it is
        db.upgrade()  # idempotent
        assert db.needs_upgrade() is False

        with db.begin() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            tables = set(sa.inspect(conn).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with db.session() as session:
            head = session.get(AuditChainHead, 1)
            assert head is not None and (head.last_id, head.last_hash) == (0, GENESIS_HASH)
    finally:
        db.dispose()


def test_migrations_run_from_any_working_directory(tmp_path: Path, database_url: str) -> None:
    # The bot may be started from anywhere (systemd, a container): migrations are found next to the package.
    script = (
        "import sys; from storage.db import Database; db = Database(sys.argv[1]); db.upgrade(); "
        "print('behind' if db.needs_upgrade() else 'current')"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script, database_url],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "current"
    assert not (elsewhere / "alembic.ini").exists()


# ---- transactions ------------------------------------------------------------------------------------------
def test_session_commits_on_success_and_rolls_back_on_error(database: Database) -> None:
    with database.session() as session:
        session.add(ProcessedDelivery(key="kept", created_at=datetime.now(UTC)))

    with pytest.raises(RuntimeError, match="boom"), database.session() as session:
        session.add(ProcessedDelivery(key="dropped", created_at=datetime.now(UTC)))
        session.flush()
        raise RuntimeError("boom")

    with database.session(readonly=True) as session:
        keys = set(session.scalars(sa.select(ProcessedDelivery.key)))
    assert keys == {"kept"}


def test_timestamps_come_back_timezone_aware_utc(database: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    written = datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    naive_utc = datetime(2024, 5, 1, 9, 0, 0, 1)
    with database.session() as session:
        session.add(ProcessedDelivery(key="aware", created_at=written))
        session.add(ProcessedDelivery(key="naive", created_at=naive_utc))

    with database.session(readonly=True) as session:
        rows = dict(session.execute(sa.select(ProcessedDelivery.key, ProcessedDelivery.created_at)).all())
    assert rows["aware"] == written  # the same instant, to the microsecond
    assert rows["aware"].utcoffset() == timedelta(0)
    assert rows["aware"].replace(tzinfo=None) == datetime(2024, 5, 1, 12, 30, 15, 123456)
    assert rows["naive"] == naive_utc.replace(tzinfo=UTC)  # naive means UTC

    # Comparisons in SQL use the same instants.
    with database.session(readonly=True) as session:
        later = session.scalars(
            sa.select(ProcessedDelivery.key).where(
                ProcessedDelivery.created_at > datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
            )
        ).all()
    assert later == ["aware"]


def test_ping_is_true_when_reachable_and_false_without_raising(database: Database, tmp_path: Path) -> None:
    assert database.ping() is True
    unreachable = Database("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    try:
        assert unreachable.ping() is False
    finally:
        unreachable.dispose()
    not_a_directory = Database(f"sqlite:///{tmp_path / 'missing-dir' / 'bot.db'}")
    assert not_a_directory.ping() is False


def test_url_spellings_select_psycopg_and_passwords_stay_hidden() -> None:
    assert normalize_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    assert "s3cret" not in safe_url("postgres://user:s3cret@db.internal/bot")
    assert "s3cret" not in repr(Database("postgres://user:s3cret@127.0.0.1:1/bot"))
    with pytest.raises(ValueError, match="unsupported database"):
        Database("mysql://user@localhost/bot")


# ---- SQLite ------------------------------------------------------------------------------------------------
def test_sqlite_connection_settings(sqlite_database: Database) -> None:
    with sqlite_database.begin(readonly=True) as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000


def test_sqlite_foreign_keys_are_enforced(sqlite_database: Database) -> None:
    from storage.models import ApprovalVote

    with pytest.raises(sa.exc.IntegrityError), sqlite_database.session() as session:
        session.add(ApprovalVote(request_id=999, approver_id="U0BOB", approver_name="", created_at=datetime.now(UTC)))


def test_in_memory_sqlite_works_for_quick_tests() -> None:
    db = Database("sqlite://")
    try:
        db.upgrade()
        assert db.needs_upgrade() is False
        with db.session() as session:
            session.add(ProcessedDelivery(key="k", created_at=datetime.now(UTC)))
        with db.session() as session:
            assert session.get(ProcessedDelivery, "k") is not None
    finally:
        db.dispose()


def test_read_modify_write_from_many_threads_neither_fails_nor_loses_updates(database: Database) -> None:
    """The pattern state changes use: read a row locked for update, change it, commit.

    On SQLite a deferred BEGIN would fail here with "database is locked" when two threads upgrade their read
    locks; on PostgreSQL, without FOR UPDATE, increments would be lost.
    """
    with database.session() as session:
        request = _request()
        session.add(request)
        session.flush()
        request_id = request.id

    errors: list[BaseException] = []
    threads_count, rounds = 8, 15

    def bump() -> None:
        try:
            for _ in range(rounds):
                with database.session() as session:
                    row = session.execute(
                        sa.select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
                    ).scalar_one()
                    row.approvals_required += 1
        except BaseException as error:  # collected and asserted below, so the failure names the error
            errors.append(error)

    threads = [threading.Thread(target=bump) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    with database.session(readonly=True) as session:
        assert session.get(ApprovalRequest, request_id).approvals_required == threads_count * rounds  # type: ignore[union-attr]


# ---- PostgreSQL --------------------------------------------------------------------------------------------
@pytest.mark.postgres
def test_postgres_reconnects_after_the_server_drops_connections(postgres_schema_url: str) -> None:
    db = Database(postgres_schema_url)
    admin = sa.create_engine(normalize_url(postgres_schema_url), isolation_level="AUTOCOMMIT")
    try:
        db.upgrade()
        with db.begin(readonly=True) as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.connect() as conn:  # what a server restart does to the bot's pooled connection
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}).scalar() is True

        with db.session() as session:  # no error: pre-ping replaced the dead connection
            session.add(ProcessedDelivery(key="after-restart", created_at=datetime.now(UTC)))
        assert db.ping() is True
        with db.session(readonly=True) as session:
            assert session.get(ProcessedDelivery, "after-restart") is not None
    finally:
        admin.dispose()
        db.dispose()
