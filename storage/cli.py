"""Operator commands for the database and the audit trail.

`add_commands` plugs `db upgrade`, `audit export` and `audit verify` into the bot's own command line.
This module also runs on its own: `python -m storage.cli [--database-url URL] audit verify`
(the URL defaults to $DATABASE_URL).
Exit codes: 0 success, 1 failure (a broken chain, a database error), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.config import DEFAULT_DATABASE_URL
from storage.audit import AuditLog
from storage.db import Database, safe_url

Handler = Callable[[argparse.Namespace, str], int]


class _BadArgument(Exception):
    """A value argparse accepted as text but that does not mean anything (exit code 2)."""


def parse_when(option: str, text: str | None) -> datetime | None:
    """An ISO date or date-time; without a zone it is UTC."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _BadArgument(
            f"{option}: {text!r} is not an ISO date or date-time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_server(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise _BadArgument(f"--server: {text!r} is not a server id (a whole number)") from None


def _first_line(error: BaseException) -> str:
    # SQLAlchemy appends the SQL and parameters after the first line; the first line says what went wrong.
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__


def _run(database_url: str, body: Callable[[Database], int], *, needs_schema: bool = True) -> int:
    """Open the database, run `body`, and turn failures into one line on stderr."""
    database: Database | None = None
    try:
        database = Database(database_url)
        if needs_schema and database.needs_upgrade():
            print("error: the database schema is not up to date; run `db upgrade` first", file=sys.stderr)
            return 1
        return body(database)
    except _BadArgument as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, ValueError) as error:
        print(f"error: database {safe_url(database_url)}: {_first_line(error)}", file=sys.stderr)
        return 1
    finally:
        if database is not None:
            database.dispose()


def db_upgrade(args: argparse.Namespace, database_url: str) -> int:
    def body(database: Database) -> int:
        if not database.needs_upgrade():
            print(f"database already up to date (revision {database.current_revision()})")
            return 0
        database.upgrade()
        print(f"database upgraded to revision {database.current_revision()}")
        return 0

    return _run(database_url, body, needs_schema=False)


def audit_export(args: argparse.Namespace, database_url: str, out: TextIO | None = None) -> int:
    try:
        since = parse_when("--since", args.since)
        until = parse_when("--until", args.until)
        server_id = _parse_server(args.server)
    except _BadArgument as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def body(database: Database) -> int:
        try:
            written = AuditLog(database).export(
                out or sys.stdout, args.format, since=since, until=until, actor_id=args.actor, server_id=server_id
            )
        except BrokenPipeError:
            # The reader went away (`… | head`): not an error. Point stdout at devnull so exit doesn't complain.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print(f"exported {written} events", file=sys.stderr)
        return 0

    return _run(database_url, body)


def audit_verify(args: argparse.Namespace, database_url: str) -> int:
    def body(database: Database) -> int:
        result = AuditLog(database).verify()
        if result.ok:
            print(f"audit chain intact: {result.count} events")
            return 0
        reason = result.reason
        prefix = f"row {result.first_bad_id}: "
        if reason.startswith(prefix):  # the row number is already in the headline
            reason = reason[len(prefix) :]
        print(f"audit chain BROKEN at row {result.first_bad_id}: {reason}")
        return 1

    return _run(database_url, body)


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `db upgrade`, `audit export`, `audit verify`; each leaf sets `func=handler(args, database_url)`."""
    db = subparsers.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="create or migrate the schema to the newest version")
    upgrade.set_defaults(func=db_upgrade)

    audit = subparsers.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    export = audit_commands.add_parser("export", help="write audit events to stdout, oldest first")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format (jsonl)")
    # Dates and numbers are checked by the handler, so a mistake is one line on stderr, not a usage dump.
    export.add_argument("--since", metavar="ISO", help="events at or after this UTC date/time")
    export.add_argument("--until", metavar="ISO", help="events before this UTC date/time")
    export.add_argument("--actor", metavar="USER_ID", help="only this Slack user id (U…)")
    export.add_argument("--server", metavar="N", help="only this server id")
    export.set_defaults(func=audit_export)
    verify = audit_commands.add_parser("verify", help="check the hash chain; exit 1 if it is broken")
    verify.set_defaults(func=audit_verify)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage.cli", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else " + DEFAULT_DATABASE_URL)
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    url = args.database_url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    handler: Handler = args.func
    return handler(args, url)


if __name__ == "__main__":
    sys.exit(main())
