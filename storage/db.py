"""The database connection: one `Database` per process, SQLite (default) or PostgreSQL (replicas).

What this module guarantees on both databases:
- `session()` is one transaction: committed when the block ends, rolled back when it raises.
- A database failure leaves `session()` and `begin()` as `storage.errors.StorageError` (the cause kept); a broken
  constraint stays SQLAlchemy's `IntegrityError`, for the repository that expects the conflict (storage/errors.py).
- Timestamps go in and come out as timezone-aware UTC.
- Schema changes go through Alembic (`upgrade()`); the migration scripts are located relative to this file, so
  they work from an installed package and from any working directory.
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import URL, Connection, CursorResult, Dialect, Engine, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from storage.dbclock import DbClock
from storage.errors import NotADatabaseUrl, StorageError, UnsupportedDatabase
from storage.writer_queue import WriterQueue

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# How long a SQLite writer waits for another writer (thread or process) before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000
# Execution option that marks a connection as read-only, so SQLite opens it with a plain (deferred) BEGIN
# instead of BEGIN IMMEDIATE and it never waits for, nor blocks, a writer.
READONLY_OPTION = "snapshot_bot_readonly"


class SchemaState(enum.Enum):
    """The schema against this version's migrations, and so whether this version may run on it.

    The compatibility rule (docs/operations.md, "Upgrading"): a migration only adds (tables, nullable or
    defaulted columns, indexes); dropping or renaming what the previous release reads waits one release. So this
    version runs on its own head and on any revision it does not know (a newer release migrated first, as a
    rolling upgrade does), but not on a revision it knows that is older than its head (its code would read
    columns that are not there yet) nor on an empty database.
    """

    MISSING = "missing"  # no snapshot-bot schema at all
    BEHIND = "behind"  # a revision this version knows, older than its head: `db upgrade` is due
    CURRENT = "current"  # this version's head
    NEWER = "newer"  # a revision this version does not know: written by a newer release's migration

    @property
    def runnable(self) -> bool:
        return self in (SchemaState.CURRENT, SchemaState.NEWER)


def schema_state_of(current: set[str], heads: set[str], known: frozenset[str]) -> SchemaState:
    """The rule of `SchemaState`, on revision ids alone."""
    if not current:
        return SchemaState.MISSING
    if current == heads:
        return SchemaState.CURRENT
    if any(revision not in known for revision in current):
        return SchemaState.NEWER
    return SchemaState.BEHIND


# What a use case holds while its state change and audit row share one transaction: it only passes it on to
# storage (repositories, AuditLog, and the two verbs below), never builds SQL with it nor flushes, refreshes,
# commits or rolls it back itself.
Transaction = Session


def commit_now(session: Transaction) -> None:
    """Keep what the transaction wrote so far, now, though the caller then raises (a refusal is recorded even when
    the decision it refuses is not); the session goes on in a new transaction."""
    session.commit()


def abandon(session: Transaction) -> None:
    """Keep nothing of the transaction and let every lock it took go at once (the rate count's, the chain head's,
    a row's), before the caller does anything slower or records a refusal in a transaction of its own; the session
    goes on in a new transaction."""
    session.rollback()


def rows_matched(result: sa.Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched: the cursor's rowcount (an ORM session types every result as a
    plain `Result`, though a DML statement's is always a `CursorResult`)."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an UPDATE or DELETE: {type(result).__name__}")
    return result.rowcount


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A naive datetime is taken to be UTC already (the bot writes only UTC); an aware one is converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def normalize_url(url: str) -> URL:
    """Accept the URL spellings hosting providers hand out and pick the psycopg 3 driver for PostgreSQL."""
    text = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if text.startswith(prefix):
            text = "postgresql+psycopg://" + text[len(prefix) :]
            break
    return make_url(text)


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return normalize_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL may still contain a password: show nothing of it
        return "<unparseable database URL>"


class _UtcSQLiteDateTime(SQLITE_DATETIME):
    """SQLite has no timezone type: store UTC wall-clock time, hand back aware UTC datetimes.

    Installed for every `DateTime` column of this engine (see `_install_utc_datetimes`), so ORM objects and
    Core rows behave the same on SQLite as on PostgreSQL's `timestamptz`.
    """

    def bind_processor(self, dialect: Dialect) -> Any:
        process = super().bind_processor(dialect)

        def bind(value: Any) -> Any:
            if isinstance(value, datetime):
                value = as_utc(value).replace(tzinfo=None)
            return process(value) if process else value

        return bind

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        process = super().result_processor(dialect, coltype)

        def result(value: Any) -> Any:
            if process is not None:
                value = process(value)
            if isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value

        return result


def _install_utc_datetimes(dialect: Dialect) -> None:
    # The dialect adapts generic types through its `colspecs`; overriding DateTime on this dialect instance
    # only affects this engine and needs no change to the models.
    dialect.colspecs = {**dialect.colspecs, sa.DateTime: _UtcSQLiteDateTime}


def missing_sqlite_file(url: str) -> str | None:
    """The path of the SQLite file `url` names when that file does not exist (opening it would create an empty
    database); None for an existing file, an in-memory database, or another backend."""
    try:
        parsed = normalize_url(url)
    except Exception:
        return None  # Database() reports the bad URL
    if parsed.get_backend_name() != "sqlite" or _is_memory_sqlite(parsed):
        return None
    path = parsed.database or ""
    if path.startswith("file:"):  # a URI filename (?uri=true): the path part
        path = path[len("file:") :].split("?", 1)[0]
    return None if os.path.exists(path) else path


def _is_memory_sqlite(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: URL) -> tuple[Engine, bool]:
    memory = _is_memory_sqlite(url)
    if memory:
        # One shared connection, or every checkout would see its own empty database.
        engine = sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    _install_utc_datetimes(engine.dialect)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from pysqlite (it defers it and then fails to upgrade read locks); see on_begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                # WAL: readers never block the writer nor each other. FULL sync: an audit row that was committed
                # before a VPS.org call must survive even a power loss, at the cost of one fsync per commit.
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # A deferred BEGIN takes a read lock and upgrades it at the first write; when another connection wrote
        # in between, the upgrade fails at once with "database is locked" (busy_timeout does not apply).
        # BEGIN IMMEDIATE takes the write lock up front and waits politely (busy_timeout) for it instead.
        if conn.get_execution_options().get(READONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine, memory


def _postgres_engine(url: URL) -> Engine:
    # Sessions in UTC: timestamptz values come back as UTC datetimes whatever the server's default zone is.
    # Kept in `options` together with anything the URL already sets there (e.g. a search_path).
    options = url.query.get("options")
    options = options if isinstance(options, str) else " ".join(options or ())
    if "timezone" not in options.lower():
        options = f"{options} -c timezone=UTC".strip()
    url = url.update_query_dict({"options": options})
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    # pool_pre_ping: a connection broken by a server restart is replaced instead of failing a request.
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


class WriterQueueTimeout(StorageError, sa.exc.OperationalError):
    """This process's other SQLite writers held the queue for longer than the busy timeout: storage's own failure,
    worded as SQLite's "database is locked" that the same wait in SQLite's busy handler ends with."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"waited {seconds:.0f} s for this process's other writers", None, Exception("database is locked")
        )


@contextmanager
def _as_storage_errors() -> Iterator[None]:
    """SQLAlchemy's failures as storage's own error type; a broken constraint is left for its repository."""
    try:
        yield
    except (sa.exc.IntegrityError, StorageError):
        raise
    except sa.exc.SQLAlchemyError as error:
        raise StorageError.from_error(error) from error


@contextmanager
def _queued(queue: WriterQueue, seconds: float) -> Iterator[None]:
    """Wait in `queue` at most `seconds` (the limit a writer has in SQLite's own busy handler)."""
    with queue.held(seconds) as acquired:
        if not acquired:
            raise WriterQueueTimeout(seconds)
        yield


class Database:
    """The engine plus transaction helpers; share one instance per process."""

    def __init__(self, url: str) -> None:
        """Opens no connection. A URL it cannot use raises `NotADatabaseUrl` or `UnsupportedDatabase` (SQLAlchemy's
        error as the cause), or `ValueError` for a backend the bot does not support."""
        self.url = url
        self._memory = False
        try:
            parsed = normalize_url(url)
            if parsed.get_backend_name() == "sqlite":
                self.engine, self._memory = _sqlite_engine(parsed)
            elif parsed.get_backend_name() == "postgresql":
                self.engine = _postgres_engine(parsed)
            else:
                raise ValueError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")
        except sa.exc.NoSuchModuleError as error:
            raise UnsupportedDatabase("no SQLAlchemy dialect for this URL's database or driver") from error
        except sa.exc.ArgumentError as error:
            raise NotADatabaseUrl("not a database URL") from error
        self.dialect: str = self.engine.dialect.name
        self.clock = DbClock(self.engine)  # the database's own time, for deadlines shared by replicas
        self._readonly_engine = self.engine.execution_options(**{READONLY_OPTION: True})
        # In-memory SQLite is one shared connection: transactions from different threads must take turns.
        self._memory_lock = threading.RLock()
        # File SQLite: this process's writers queue here, so only one of them at a time waits in SQLite's busy
        # handler. That handler polls with growing sleeps and is not fair: with 32 threads writing, the median
        # wait was 1 ms but the slowest waited 2.8 s in a 3 s run, and under a long load one passed the busy
        # timeout ("database is locked"). The queue serves them in arrival order, each woken as soon as the one
        # before is done. It adds no serialization: SQLite already runs one write transaction at a time.
        self._writers = WriterQueue() if self.dialect == "sqlite" and not self._memory else None

    def __repr__(self) -> str:
        return f"Database({safe_url(self.url)!r})"

    def _serialized(self, *, readonly: bool = False) -> Any:
        if self._memory:
            return self._memory_lock
        if self._writers is not None and not readonly:
            return _queued(self._writers, SQLITE_BUSY_TIMEOUT_MS / 1000)
        return nullcontext()

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        On SQLite a normal session holds the write lock from its start (writers queue up instead of failing);
        pass `readonly=True` for pure reads so they never wait for writers.
        """
        bind = self._readonly_engine if readonly else self.engine
        with (
            _as_storage_errors(),
            self._serialized(readonly=readonly),
            Session(bind=bind, expire_on_commit=False) as session,
        ):
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def begin(self, *, readonly: bool = False, isolation_level: str | None = None) -> Iterator[Connection]:
        """A Core connection in one transaction (committed at the end, rolled back on error).

        `isolation_level` (e.g. "REPEATABLE READ") applies on PostgreSQL only; SQLite transactions are already
        serializable.
        """
        engine = self._readonly_engine if readonly else self.engine
        with _as_storage_errors(), self._serialized(readonly=readonly), engine.connect() as conn:
            if isolation_level and self.dialect == "postgresql":
                conn.execution_options(isolation_level=isolation_level)
            with conn.begin():
                yield conn

    # ---- schema ----------------------------------------------------------------------------------------
    def _alembic_config(self, connection: Connection | None = None) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        # Percent signs would be read as interpolation by configparser.
        config.set_main_option("sqlalchemy.url", self.engine.url.render_as_string(False).replace("%", "%%"))
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.begin(readonly=True) as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def known_revisions(self) -> frozenset[str]:
        """Every revision this version's migrations define (read from the files once per call)."""
        from alembic.script import ScriptDirectory

        return frozenset(
            script.revision for script in ScriptDirectory.from_config(self._alembic_config()).walk_revisions()
        )

    def head_revisions(self) -> frozenset[str]:
        from alembic.script import ScriptDirectory

        return frozenset(ScriptDirectory.from_config(self._alembic_config()).get_heads())

    def schema_state(self, known: frozenset[str] | None = None, heads: frozenset[str] | None = None) -> SchemaState:
        """Where the schema stands against this version's migrations (see `SchemaState`). Raises if unreachable.
        `known` and `heads` (read from the migration files when not given) let a frequent caller read them once."""
        from alembic.runtime.migration import MigrationContext

        heads = self.head_revisions() if heads is None else heads
        known = self.known_revisions() if known is None else known
        with self.begin(readonly=True) as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        return schema_state_of(current, set(heads), known)

    def needs_upgrade(self) -> bool:
        """True for a new database and for one behind the newest migration (not for one a newer version migrated:
        this version cannot migrate it, and by the expand-only rule it can run on it; see `SchemaState`)."""
        return self.schema_state() in (SchemaState.MISSING, SchemaState.BEHIND)

    def upgrade(self) -> None:
        """Bring the schema to the newest migration. Safe to run again, and from several replicas at once."""
        from alembic import command

        # One transaction for the whole upgrade: on SQLite BEGIN IMMEDIATE, on PostgreSQL an advisory lock
        # taken in env.py, so two replicas starting together migrate one after the other, not over each other.
        with self.begin() as conn:
            command.upgrade(self._alembic_config(conn), "head")

    # ---- health ----------------------------------------------------------------------------------------
    def connect_once(self) -> None:
        """Connect and run SELECT 1 (start-up's check); a failure raises `StorageError` with the driver's as cause."""
        with self.begin(readonly=True) as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    def ping(self) -> bool:
        """SELECT 1, for /healthz. Never raises."""
        try:
            with self.begin(readonly=True) as conn:
                conn.exec_driver_sql("SELECT 1").scalar()
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
