"""The operator commands' handlers: `db upgrade|status`, `audit export|verify|keygen|reanchor`.

Their shape (arguments, help) is bot/cli/commands.py, which imports this module only when a command runs, so
`--help` stays cheap; this module never imports that one (no circle). Each handler takes (args, database_url).
Exit codes: 0 success, 1 failure (a broken chain, a database error), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.auditing import audit_log
from bot.config import read_environment
from storage.checkpoints import (
    REANCHOR_ACTION,
    Checkpoint,
    chain_head_missing,
    parse_lines,
    reanchor,
    verify_against_checkpoints,
)
from storage.db import Database, missing_sqlite_file, safe_url
from storage.errors import StorageError
from storage.signing import KeyLoadError, generate_key_file, load_public_key, public_text, split_key_list


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
    if not (text.isascii() and text.isdigit()) or len(text) > 16:  # int() would take ৪ and fullwidth ４ too
        raise _BadArgument(f"--server: {text[:40]!r} is not a server id (a whole number); use digits 0-9")
    return int(text)


def _parse_action(text: str | None) -> str | None:
    if text is None:
        return None
    name = text.strip()
    if not name or any(c.isspace() for c in name):
        raise _BadArgument(f"--action: {text!r} is not an action name (e.g. restore, or restore.approved)")
    return name


def _first_line(error: BaseException) -> str:
    # SQLAlchemy appends the SQL and parameters after the first line; the first line says what went wrong.
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__


def _run(
    database_url: str, body: Callable[[Database], int], *, needs_schema: bool = True, may_create: bool = False
) -> int:
    """Open the database, run `body`, and turn failures into one line on stderr.

    Every command first names the database it works on (password masked), on stderr. Only `db upgrade`
    (`may_create`) creates a database: the others say so when the SQLite file they were pointed at does not
    exist, and those that need the bot's schema when it holds none, or an older one.
    """
    shown = safe_url(database_url)
    print(f"database: {shown}", file=sys.stderr)
    missing = None if may_create else missing_sqlite_file(database_url)
    if missing is not None:
        print(
            f"error: no database at {shown}: {Path(missing).resolve()} does not exist "
            "(set DATABASE_URL, or --database-url, to the bot's database)",
            file=sys.stderr,
        )
        return 1
    database: Database | None = None
    try:
        database = Database(database_url)
        if needs_schema and database.needs_upgrade():
            current = database.current_revision()
            if current is None:
                problem = "has no snapshot-bot schema (an empty database, or not the bot's)"
            else:
                problem = f"is at schema revision {current}, older than this bot's {database.head_revision()}"
            print(f"error: the database {shown} {problem}; run `db upgrade` first", file=sys.stderr)
            return 1
        return body(database)
    except _BadArgument as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StorageError as error:  # what failed is in its cause, as the database driver said it
        print(f"error: database {shown}: {_first_line(error.__cause__ or error)}", file=sys.stderr)
        return 1
    except ValueError as error:  # a backend the bot does not support (Database() opens no connection)
        print(f"error: database {shown}: {_first_line(error)}", file=sys.stderr)
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

    return _run(database_url, body, needs_schema=False, may_create=True)


def db_status(args: argparse.Namespace, database_url: str) -> int:
    """The schema's revision against this bot's newest; exit 0 when up to date, 1 when `db upgrade` is due."""

    def body(database: Database) -> int:
        current, newest = database.current_revision(), database.head_revision()
        if not database.needs_upgrade():
            print(f"schema revision {current}: up to date")
            return 0
        if current is None:
            print(f"no snapshot-bot schema (an empty database, or not the bot's); `db upgrade` creates {newest}")
        else:
            print(f"schema revision {current}, older than this bot's {newest}: run `db upgrade`")
        return 1

    return _run(database_url, body, needs_schema=False)


def audit_export(args: argparse.Namespace, database_url: str, out: TextIO | None = None) -> int:
    try:
        since = parse_when("--since", args.since)
        until = parse_when("--until", args.until)
        server_id = _parse_server(args.server)
        action = _parse_action(getattr(args, "action", None))
    except _BadArgument as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def body(database: Database) -> int:
        try:
            written = audit_log(database).export(
                out or sys.stdout,
                args.format,
                since=since,
                until=until,
                actor_id=args.actor,
                server_id=server_id,
                action=action,
            )
        except BrokenPipeError:
            # The reader went away (`… | head`): not an error. Point stdout at devnull so exit doesn't complain.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print(f"exported {written} {'event' if written == 1 else 'events'}", file=sys.stderr)
        return 0

    return _run(database_url, body)


def _trusted_keys(args: argparse.Namespace) -> list[Ed25519PublicKey]:
    """--public-key values, AUDIT_VERIFY_KEYS and the public half of AUDIT_SIGNING_KEY (from the bot's settings
    when run as `python -m bot`, else from the environment)."""
    texts = list(getattr(args, "public_key", None) or [])
    configured = getattr(args, "configured_keys", None)
    if configured is None:
        env = read_environment()
        configured = split_key_list(env.get("AUDIT_VERIFY_KEYS", ""))
        signing = env.get("AUDIT_SIGNING_KEY", "").strip()
        configured += [signing] if signing else []
    keys = []
    for text in [*texts, *configured]:
        try:
            keys.append(load_public_key(text, "public key"))
        except KeyLoadError as error:
            raise _BadArgument(str(error)) from None
    return keys


def _read_checkpoints(path: str) -> list[Checkpoint]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            parsed = parse_lines(handle)
    except OSError as error:
        raise _BadArgument(f"--checkpoints: cannot read {path}: {error.strerror}") from None
    if isinstance(parsed, tuple):
        raise _CheckpointFileBroken(f"{path} line {parsed[0]}: {parsed[1]}")
    return parsed


class _CheckpointFileBroken(Exception):
    """A line of the checkpoint file is not a checkpoint record: that file has been tampered with or damaged."""


def audit_verify(args: argparse.Namespace, database_url: str) -> int:
    if getattr(args, "checkpoints", None):
        return _verify_with_checkpoints(args, database_url)

    def body(database: Database) -> int:
        result = audit_log(database).verify()
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


def _verify_with_checkpoints(args: argparse.Namespace, database_url: str) -> int:
    try:
        keys = _trusted_keys(args)
        records = _read_checkpoints(args.checkpoints)
    except _BadArgument as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except _CheckpointFileBroken as error:
        print(f"audit checkpoints BROKEN at {error}")
        return 1
    if not keys:
        print(
            "error: no public key to check signatures with: pass --public-key or set AUDIT_VERIFY_KEYS", file=sys.stderr
        )
        return 2

    def body(database: Database) -> int:
        result = verify_against_checkpoints(database, records, keys)
        for note in result.notes:
            print(f"note: {note}")
        if result.ok:
            print(result.reason)
            return 0
        print(f"audit chain BROKEN at {result.culprit}: {result.reason}")
        return 1

    return _run(database_url, body)


def audit_keygen(args: argparse.Namespace, database_url: str) -> int:
    path = Path(args.out).expanduser()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # e.g. ~/.config/snapshot-bot, outside the checkout
        signer = generate_key_file(path)
    except FileExistsError:
        print(f"error: {path} exists; keygen never overwrites a key (choose another --out)", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write {path}: {error.strerror}", file=sys.stderr)
        return 2
    public = public_text(signer.public)
    print(f"private key written to {path} (mode 0600); keep it off the database host if you can")
    if _inside_a_git_checkout(path):
        print(f"warning: {path} is inside a git checkout; move it out (keys do not belong in a repository)")
    print(f"key id:     {signer.key_id}")
    print(f"public key: {public}")
    print("set:")
    print(f"  AUDIT_SIGNING_KEY={path.resolve()}")
    print(f"  AUDIT_VERIFY_KEYS={public}   # keep old public keys here after a rotation")
    return 0


def _inside_a_git_checkout(path: Path) -> bool:
    return any((folder / ".git").exists() for folder in path.resolve().parents)


def audit_reanchor(args: argparse.Namespace, database_url: str) -> int:
    """Recreate a deleted chain head, after checking that nothing else is wrong. The act is itself audited."""
    try:
        keys = _trusted_keys(args) if args.checkpoints else []
        records = _read_checkpoints(args.checkpoints) if args.checkpoints else []
    except (_BadArgument, _CheckpointFileBroken) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def body(database: Database) -> int:
        if not chain_head_missing(database):
            print("error: the audit_chain_head row is present (or there are no events): nothing to re-anchor")
            return 1
        if args.checkpoints:
            checked = verify_against_checkpoints(database, records, keys)
            problem = None if checked.culprit == "the chain head" else f"{checked.culprit}: {checked.reason}"
        else:
            plain = audit_log(database).verify()
            problem = None if "audit_chain_head row is missing" in plain.reason else plain.reason
        if problem is not None:
            print(f"error: refusing to re-anchor a chain with other damage: {problem}")
            return 1
        anchored_id, anchored_hash = reanchor(audit_log(database), actor_id=args.by, reason=args.reason)
        print(f"audit chain re-anchored at event {anchored_id} ({anchored_hash[:12]}…); recorded as {REANCHOR_ACTION}")
        if not args.checkpoints:
            print("note: without --checkpoints nothing shows whether newer events were cut before the head was lost")
        return 0

    return _run(database_url, body)
