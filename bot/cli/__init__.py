"""Operator command lines that live beside the bot (`python -m bot db …`, `python -m bot audit …`).

They also run on their own: `python -m bot.cli [--database-url URL] audit verify` (the URL defaults to
DATABASE_URL; settings are read as the bot reads them: the environment over `.env`).
Exit codes: 0 success, 1 failure (a broken chain, a database error), 2 bad arguments.
"""

import argparse
from collections.abc import Sequence

from bot.cli.commands import Handler, add_commands
from bot.config import DEFAULT_DATABASE_URL, read_environment


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.cli …`: the parser is cheap; a command's handler imports SQLAlchemy and storage when it runs."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.cli", description="Operator commands for the database and the audit trail."
    )
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else " + DEFAULT_DATABASE_URL)
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    url = args.database_url or read_environment().get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    handler: Handler = args.func
    return handler(args, url)


__all__ = ["add_commands", "main"]
