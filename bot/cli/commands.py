"""The operator command line's shape (`db upgrade`, `audit …`), cheap to build.

The handlers live in bot.cli.operator, which imports SQLAlchemy, cryptography and storage; it is imported when a
command runs, so `python -m bot --help` does not pay for it. `--help` always lists every command; a broken import
there fails the command that needs it, loudly, naming what is missing.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace, str], int]


def _handler(name: str) -> Handler:
    def run(args: argparse.Namespace, database_url: str) -> int:
        try:
            operator = importlib.import_module("bot.cli.operator")
        except ImportError as error:  # loud, and saying what is wrong, never a command quietly missing
            command = name.replace("_", " ")
            raise SystemExit(
                f"snapshot-bot: `{command}` cannot run: {error}. The installation is incomplete: "
                "reinstall the bot with its dependencies (pip install snapshot-bot, or make .venv/.installed)."
            ) from error
        handler: Handler = getattr(operator, name)
        return handler(args, database_url)

    run.__name__ = run.__qualname__ = name
    return run


def _database_option() -> argparse.ArgumentParser:
    """`--database-url URL` after any command (the messages suggest it there); it wins over DATABASE_URL."""
    parent = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: unset here never hides `python -m bot.cli --database-url URL …` given before the command.
    parent.add_argument(
        "--database-url", metavar="URL", default=argparse.SUPPRESS, help="the bot's database (default: $DATABASE_URL)"
    )
    return parent


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> argparse._SubParsersAction[Any]:
    """Add `db upgrade` and the `audit` commands; each leaf sets `func=handler(args, database_url)`.

    Returns the `audit` sub-commands, so the bot can add the ones that need Slack."""
    database = _database_option()
    db = subparsers.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser(
        "upgrade", parents=[database], help="create or migrate the schema to the newest version"
    )
    upgrade.set_defaults(func=_handler("db_upgrade"))
    status = db_commands.add_parser(
        "status", parents=[database], help="which schema revision the database is at (creates nothing)"
    )
    status.set_defaults(func=_handler("db_status"))

    audit = subparsers.add_parser("audit", help="the audit trail")
    audit_commands: argparse._SubParsersAction[Any] = audit.add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    export = audit_commands.add_parser("export", parents=[database], help="write audit events to stdout, oldest first")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format (jsonl)")
    # Dates and numbers are checked by the handler, so a mistake is one line on stderr, not a usage dump.
    export.add_argument("--since", metavar="ISO", help="events at or after this UTC date/time")
    export.add_argument("--until", metavar="ISO", help="events before this UTC date/time")
    export.add_argument("--actor", metavar="USER_ID", help="only this Slack user id (U…)")
    export.add_argument("--server", metavar="N", help="only this server id")
    export.add_argument(
        "--action", metavar="NAME", help="only this action, or every action under it: create matches create.*"
    )
    export.set_defaults(func=_handler("audit_export"))
    verify = audit_commands.add_parser(
        "verify", parents=[database], help="check the hash chain; exit 1 if it is broken"
    )
    verify.add_argument(
        "--checkpoints", metavar="FILE", help="also check the chain against these signed checkpoints (JSON Lines)"
    )
    verify.add_argument(
        "--public-key",
        action="append",
        metavar="KEY",
        help="trusted public key (ed25519:… or a PEM file); repeatable; adds to AUDIT_VERIFY_KEYS",
    )
    verify.set_defaults(func=_handler("audit_verify"))
    keygen = audit_commands.add_parser("keygen", help="write a new Ed25519 signing key for audit checkpoints")
    keygen.add_argument("--out", metavar="FILE", required=True, help="where to write the private key (mode 0600)")
    keygen.set_defaults(func=_handler("audit_keygen"))
    anchor = audit_commands.add_parser(
        "reanchor",
        parents=[database],
        help="recreate a deleted chain head after verifying the rest (recorded in the trail)",
    )
    anchor.add_argument("--checkpoints", metavar="FILE", help="verify against these checkpoints first (advised)")
    anchor.add_argument("--public-key", action="append", metavar="KEY", help="trusted public key; repeatable")
    anchor.add_argument("--by", metavar="USER_ID", default="operator", help="who re-anchors (your Slack user id)")
    anchor.add_argument("--reason", required=True, help="why, for the record")
    anchor.set_defaults(func=_handler("audit_reanchor"))
    return audit_commands
