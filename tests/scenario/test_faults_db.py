"""The bot's database on a bad day: locked, unavailable, restarted under the running bot.

Audit first, always: when the intent row cannot be written, VPS.org is not called and the user is told plainly.
A PostgreSQL restart (simulated with pg_terminate_backend, never by touching the shared server) is survived
without restarting the bot: the pool's pre-ping replaces the dead connections.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.slack.listeners.common import DATABASE_DOWN
from storage.db import normalize_url
from tests.app_fixtures import ALICE, BOB, Harness

APPROVALS = "C0APPROVE"
DOWN_WORDS = "The bot's database is unavailable, so nothing was done"


def mutating(h: Harness) -> list[str]:
    return [f"{r.method} {r.path}" for r in h.sim.requests if r.method in ("POST", "DELETE")]


# ---- SQLite: locked by another writer ------------------------------------------------------------------------
@pytest.fixture
def locked_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Callable[[bool], None]]]:
    """(database URL, lock(on)): `lock(True)` holds the write lock from another connection, as a stuck process
    or a backup tool would. The busy timeout is cut to 0.3 s so the test does not wait the real 15 s."""
    monkeypatch.setattr("storage.db.SQLITE_BUSY_TIMEOUT_MS", 300)
    path = tmp_path / "bot.db"
    holder: list[sqlite3.Connection] = []

    def lock(on: bool) -> None:
        if on:
            conn = sqlite3.connect(path, isolation_level=None, timeout=5)
            conn.execute("BEGIN EXCLUSIVE")
            holder.append(conn)
        else:
            while holder:
                conn = holder.pop()
                conn.execute("ROLLBACK")
                conn.close()

    yield f"sqlite:///{path}", lock
    lock(False)


def test_locked_sqlite_refuses_the_command_and_calls_nothing(
    make_harness: Callable[..., Harness], locked_sqlite: tuple[str, Callable[[bool], None]]
) -> None:
    url, lock = locked_sqlite
    h = make_harness(database_url=url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.run("restore 801")
    card = next(m for m in h.channel(APPROVALS) if m.thread_ts is None)
    before = len(h.audit())

    lock(True)
    h.run("create 12345 while-locked")
    assert h.last_ephemeral().visible_text == DATABASE_DOWN
    assert DOWN_WORDS in DATABASE_DOWN
    h.run("delete 798")
    h.driver.block_action("snapshot_delete_confirm", "798", user_id=ALICE, channel_id="C0OPS")
    h.settle()
    assert h.last_ephemeral().visible_text == DATABASE_DOWN
    h.click(card, "Approve", user=BOB)
    h.settle()
    assert h.last_ephemeral(BOB).visible_text == DATABASE_DOWN
    assert mutating(h) == []  # no intent row, no call
    lock(False)

    assert len(h.audit()) == before  # nothing half-written while locked
    assert h.bot.core.audit.open_intents() == []
    h.run("create 12345 after-lock")
    assert "started snapshot `after-lock`" in h.channel()[-1].visible_text
    h.click(card, "Approve", user=BOB)
    h.settle()
    assert mutating(h) == ["POST /api/v1/snapshots/", "POST /api/v1/snapshots/801/restore/"]
    assert h.bot.core.audit.verify().ok


# ---- PostgreSQL: a login role the test can lock out, and whose connections it can kill ----------------------
@pytest.fixture
def pg_role() -> Iterator[tuple[str, sa.Engine, str]]:
    """(bot's URL, admin engine, role): a fresh role owning a fresh schema, so the test can refuse its logins
    and terminate its connections without disturbing anyone else on the shared server."""
    base_text = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not base_text:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
        pytest.skip("TEST_DATABASE_URL is not set (PostgreSQL tests skipped)")
    base = normalize_url(base_text)
    name = f"faults_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{name}" LOGIN')
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
    url = base.set(username=name).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False), admin, name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'")
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        admin.dispose()


def terminate(admin: sa.Engine, role: str) -> int:
    with admin.connect() as conn:
        return len(
            conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
            ).all()
        )


@pytest.mark.postgres
def test_postgres_unavailable_refuses_the_command_then_recovers_by_itself(
    make_harness: Callable[..., Harness], pg_role: tuple[str, sa.Engine, str]
) -> None:
    url, admin, role = pg_role
    h = make_harness(database_url=url)
    h.run("list 12345")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER ROLE "{role}" NOLOGIN')
    assert terminate(admin, role) >= 1

    h.run("create 12345 while-down")
    assert h.last_ephemeral().visible_text == DATABASE_DOWN
    assert mutating(h) == []
    assert not h.bot.core.db.ping()

    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER ROLE "{role}" LOGIN')
    h.run("create 12345 back-up")
    assert "started snapshot `back-up`" in h.channel()[-1].visible_text
    assert mutating(h) == ["POST /api/v1/snapshots/"]
    assert h.actions()[-2:] == ["create.requested", "create.succeeded"]
    assert h.bot.core.audit.verify().ok


@pytest.mark.postgres
def test_postgres_restart_under_the_bot_is_survived_without_restarting_it(
    make_harness: Callable[..., Harness], pg_role: tuple[str, sa.Engine, str]
) -> None:
    url, admin, role = pg_role
    h = make_harness(database_url=url)
    h.run("create 12345 before-restart")
    killed = terminate(admin, role)
    assert killed >= 1, "the bot held no connection to kill"

    # The very next command works: dead pooled connections are noticed by the pre-ping and replaced.
    h.run("create 12345 after-restart")
    assert "started snapshot `after-restart`" in h.channel()[-1].visible_text
    assert all(e.visible_text != DATABASE_DOWN for e in h.ephemerals())
    assert h.actions().count("create.succeeded") == 2
    assert h.bot.core.db.ping()
    assert h.bot.core.audit.verify().ok
