"""The schema compatibility rule readiness and start-up use (storage.db.SchemaState): this version runs on its own
head and on a revision a newer release wrote (rolling upgrade: the migration ran first), not on an older one."""

from __future__ import annotations

import sqlalchemy as sa

from storage.db import Database, SchemaState, schema_state_of


def set_revision(db: Database, revision: str) -> None:
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision})


def test_the_rule_on_revision_ids() -> None:
    known = frozenset({"0001", "0002"})
    assert schema_state_of(set(), {"0002"}, known) is SchemaState.MISSING
    assert schema_state_of({"0001"}, {"0002"}, known) is SchemaState.BEHIND
    assert schema_state_of({"0002"}, {"0002"}, known) is SchemaState.CURRENT
    assert schema_state_of({"0003_next_release"}, {"0002"}, known) is SchemaState.NEWER
    assert [s for s in SchemaState if s.runnable] == [SchemaState.CURRENT, SchemaState.NEWER]


def test_a_database_a_newer_release_migrated_is_runnable_and_not_upgraded(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert db.schema_state() is SchemaState.MISSING
        db.upgrade()
        head = db.head_revision()
        assert head is not None and db.schema_state() is SchemaState.CURRENT
        first = sorted(db.known_revisions())[0]
        set_revision(db, first)
        assert db.schema_state() is SchemaState.BEHIND and db.needs_upgrade()
        set_revision(db, "0099_a_later_release")
        # An old pod restarting mid-upgrade must neither try to migrate (Alembic cannot) nor report not ready.
        assert db.schema_state() is SchemaState.NEWER and not db.needs_upgrade()
    finally:
        db.dispose()
