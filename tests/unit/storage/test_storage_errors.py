"""A database failure leaves storage as `StorageError` (the one type the bot catches), its cause kept; a broken
constraint stays SQLAlchemy's `IntegrityError` for the repository that expects the conflict; the transaction is
rolled back either way."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from storage.db import Database
from storage.deliveries import DeliveryLog
from storage.errors import NotADatabaseUrl, StorageError, UnsupportedDatabase
from storage.models import ProcessedDelivery


def test_a_failing_statement_leaves_a_session_as_storage_error_and_keeps_nothing(database: Database) -> None:
    with pytest.raises(StorageError) as raised, database.session() as session:
        session.add(ProcessedDelivery(key="kept-only-if-committed", created_at=datetime.now(UTC)))
        session.flush()
        session.execute(sa.text("SELECT * FROM no_such_table"))
    assert isinstance(raised.value.__cause__, sa.exc.SQLAlchemyError)
    assert "no_such_table" not in str(raised.value)  # the statement stays in the cause, for the log
    with database.session(readonly=True) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ProcessedDelivery)) == 0


def test_a_failing_statement_leaves_a_core_transaction_as_storage_error(database: Database) -> None:
    with pytest.raises(StorageError), database.begin() as conn:
        conn.exec_driver_sql("SELECT * FROM no_such_table")


def test_an_unreachable_database_is_a_storage_error() -> None:
    unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2")
    try:
        with pytest.raises(StorageError), unreachable.session(readonly=True) as session:
            session.execute(sa.text("SELECT 1"))
    finally:
        unreachable.dispose()


def test_a_conflict_stays_for_the_repository_that_expects_it(database: Database) -> None:
    deliveries = DeliveryLog(database)
    assert deliveries.first_time("Ev01") is True
    assert deliveries.first_time("Ev01") is False  # the unique key's IntegrityError, answered by the repository
    with pytest.raises(sa.exc.IntegrityError), database.session() as session:
        session.add(ProcessedDelivery(key="Ev01", created_at=datetime.now(UTC)))


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("postgres//user:s3cret@nohost", NotADatabaseUrl),
        ("postgresql+nodriver://user:s3cret@h/db", UnsupportedDatabase),
    ],
)
def test_a_url_the_database_cannot_use_is_a_storage_error_of_its_own_kind(url: str, error: type[StorageError]) -> None:
    """Start-up and the operator CLI word each kind their own way without importing SQLAlchemy; no password shows."""
    with pytest.raises(error) as raised:
        Database(url)
    assert isinstance(raised.value.__cause__, sa.exc.ArgumentError)
    assert "s3cret" not in str(raised.value)


def test_start_ups_connection_check_fails_as_a_storage_error() -> None:
    unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2")
    try:
        with pytest.raises(StorageError) as raised:
            unreachable.connect_once()
        assert isinstance(raised.value.__cause__, sa.exc.OperationalError)
    finally:
        unreachable.dispose()
